"""What tasks do, without Kafka: a file sent from where it left off, chunk by chunk with its
progress; an evaluation marks every row a test row (scored, never learned) under ids of its
own; an export of a tenant with no checkpoint fails saying so."""

from __future__ import annotations

import pytest

from streams.control import jobs
from streams.control.tasks import Task
from streams.settings import Settings

pytestmark = pytest.mark.control


class Sent:
    def __init__(self, settings):
        pass

    def send(self, tenant, examples, dead_letters=()):
        SENT.extend(examples)


SENT: list = []


@pytest.fixture()
def rows(tmp_path, monkeypatch):
    SENT.clear()
    monkeypatch.setattr(jobs, "Sender", Sent)
    monkeypatch.setattr(jobs, "CHUNK", 4)
    path = tmp_path / "rows.csv"
    path.write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(10)))
    return path


def test_a_file_is_sent_from_where_it_left_off(rows):
    seen = []
    task = Task("t1", "train-file", "acme", {"path": str(rows), "label": "y"})
    assert jobs.train_file(Settings(), task, 4, lambda d, t: seen.append((d, t))) == 10
    assert [e.features["x"] for e in SENT] == list(range(4, 10))
    assert seen == [(4, 10), (8, 10), (10, 10)]
    assert not any(e.test for e in SENT)


def test_an_evaluation_scores_every_row_and_learns_none(rows):
    task = Task("t2", "evaluate", "acme", {"path": str(rows), "label": "y"})
    jobs.train_file(Settings(), task, 0, lambda d, t: None, evaluate=True)
    assert len(SENT) == 10 and all(e.test for e in SENT)
    assert all(e.id.startswith("eval-t2-") for e in SENT)


def test_a_missing_file_fails_the_task_with_the_reason(tmp_path):
    task = Task("t3", "train-file", "acme", {"path": str(tmp_path / "no.csv"), "label": "y"})
    with pytest.raises(ValueError, match="no such file on the worker"):
        jobs.train_file(Settings(), task, 0, lambda d, t: None)


class Message:
    def __init__(self, offset, value):
        self._offset, self._value = offset, value

    def offset(self):
        return self._offset

    def value(self):
        return self._value

    def error(self):
        return None


class Partition:
    """A training partition: offsets 0..n-1, two tenants alternating, one bad record."""

    def __init__(self, n):
        from streams.contracts.events import TrainingExample, encode

        self.log = [Message(i, b"{broken" if i == 3 else encode(TrainingExample(
            f"e{i}", 1.0, "a" if i % 2 else "b", {"x": i}, i % 2))) for i in range(n)]
        self.at, self.closed = 0, False

    def __call__(self, settings, partition, offset):
        self.at = offset
        return self

    def consume(self, n, timeout):
        got = self.log[self.at:self.at + n]
        self.at += len(got)
        return got

    def close(self):
        self.closed = True


def test_a_replay_sends_the_range_again_under_the_tenant_and_ids_of_its_own(rows):
    part, seen = Partition(20), []
    task = Task("r1", "replay", "new", {"partition": 0, "start": 2, "end": 12,
                                        "source_tenant": "a"})
    assert jobs.replay(Settings(), task, 0, lambda d, t: seen.append((d, t)), part) == 10
    assert [e.features["x"] for e in SENT] == [5, 7, 9, 11]  # tenant a's; 3 did not decode
    assert all(e.tenant == "new" and e.id.startswith("replay-r1-") for e in SENT)
    assert seen[0] == (0, 10) and seen[-1] == (10, 10) and part.closed


def test_a_replay_resumes_and_a_range_past_the_end_fails(rows):
    part = Partition(20)
    task = Task("r2", "replay", "new", {"partition": 0, "start": 0, "end": 10})
    jobs.replay(Settings(), task, 6, lambda d, t: None, part)
    assert [e.features["x"] for e in SENT] == [6, 7, 8, 9]
    past = Task("r3", "replay", "new", {"partition": 0, "start": 15, "end": 40})
    with pytest.raises(ValueError, match="the partition ends at 20"):
        jobs.replay(Settings(), past, 0, lambda d, t: None, Partition(20))
