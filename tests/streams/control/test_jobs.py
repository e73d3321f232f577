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
