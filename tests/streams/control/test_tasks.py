"""Tasks without Kafka: submissions validated naming the field; the runner runs what it owns,
fairly across tenants, resumes what another worker left, stops on a cancel or when the task
moves away, and fails a task that raises without stopping."""

from __future__ import annotations

from dataclasses import replace

import pytest

from streams.contracts.fields import InvalidEvent
from streams.control.runner import TaskRunner
from streams.control.tasks import CANCEL, Task, TaskBoard, submission
from streams.settings import Settings

pytestmark = pytest.mark.control


class Log:
    def __init__(self, board, lag=False):
        self.board, self.records, self.lag = board, [], lag

    def write(self, task):  # the topic, read back at once (or never: a board that lags)
        self.records.append(task)
        if not self.lag:
            self.board.take(task.id.encode(), task.encode())


def runner(handlers, owns=lambda t: True):
    board = TaskBoard(Settings())
    return TaskRunner(board, Log(board), owns, handlers, "me"), board


def queue(board, *tasks):
    for t in tasks:
        board.take(t.id.encode(), t.encode())


def task(tid, tenant="a", **kw):
    return Task(tid, "export", tenant, {"path": "/x"}, submitted_at=float(len(tid)), **kw)


@pytest.mark.parametrize(("doc", "field"), [
    ({"kind": "reindex", "tenant": "a"}, "kind"),
    ({"kind": "export", "tenant": "a b", "params": {"path": "/x"}}, "tenant"),
    ({"kind": "export", "tenant": "a", "params": {}}, "params.path"),
    ({"kind": "export", "tenant": "a", "params": {"path": "/x", "rm": 1}}, "params.rm"),
    ({"kind": "export", "tenant": "a", "params": {"path": ["/x"]}}, "params.path"),
    ({"kind": "export", "tenant": "a", "params": {"path": "/x"}, "priority": 99}, "priority"),
    ({"kind": "train-file", "tenant": "a", "params": {"path": "/x", "label": "y", "rate": 0}},
     "params.rate"),
    ({"kind": "train-file", "tenant": "a", "params": {"path": "/x", "label": "y",
                                                     "rate": 1e-300}}, "params.rate"),
    ({"kind": "train-file", "tenant": "a", "params": {"path": "/x", "label": "y",
                                                     "rate": "fast"}}, "params.rate"),
    ({"kind": "evaluate", "tenant": "a", "params": {"path": "/x", "label": "y",
                                                   "rate": float("inf")}}, "params.rate"),
])
def test_a_bad_submission_names_its_field(doc, field):
    with pytest.raises(InvalidEvent) as err:
        submission(doc, "x")
    assert err.value.field == field


def test_a_task_runs_to_done_with_its_progress():
    def export(t, start, progress):
        for i in range(start, 3):
            progress(i + 1, 3)
        return 3

    r, board = runner({"export": export})
    queue(board, task("t1"))
    assert r.step() and not r.step()
    assert [(t.state, t.done, t.total) for t in r.out.records][-1] == ("done", 3, 3)
    assert r.out.records[0].state == "running" and r.out.records[0].worker == "me"


def test_a_task_left_running_elsewhere_resumes_from_its_progress():
    starts = []
    r, board = runner({"export": lambda t, start, p: starts.append(start) or 10})
    queue(board, task("t1", state="running", done=7, total=10, worker="gone/123"))
    r.step()
    assert starts == [7] and board.get("t1").state == "done"


def test_one_tenant_many_tasks_do_not_starve_another():
    order = []
    r, board = runner({"export": lambda t, s, p: order.append(t.tenant) or 1})
    queue(board, task("a1"), task("a22"), task("a333"), task("b4444", tenant="b"))
    while r.step():
        pass
    assert order == ["a", "b", "a", "a"]


def test_higher_priority_first():
    order = []
    r, board = runner({"export": lambda t, s, p: order.append(t.id) or 1})
    queue(board, task("low"), task("high", priority=5))
    while r.step():
        pass
    assert order == ["high", "low"]


def test_a_cancel_stops_a_running_task_and_a_queued_one_never_runs():
    ran = []

    def export(t, start, progress):
        ran.append(t.id)
        board.take((CANCEL + t.id).encode(), b"{}")  # cancelled while it runs
        progress(1, 2)
        return 2

    r, board = runner({"export": export})
    queue(board, task("t1"), task("t22", tenant="b"))
    board.take((CANCEL + "t22").encode(), b"{}")
    while r.step():
        pass
    assert ran == ["t1"]
    assert board.get("t1").state == "cancelled" and board.get("t22").state == "cancelled"


def test_a_task_that_raises_fails_and_the_next_one_runs():
    def export(t, start, progress):
        if t.id == "bad":
            raise ValueError("tenant 'a' has no checkpoint yet")
        return 1

    r, board = runner({"export": export})
    queue(board, task("bad"), task("good", tenant="b"))
    while r.step():
        pass
    assert board.get("bad").state == "failed" and "no checkpoint" in board.get("bad").error
    assert board.get("good").state == "done"


def test_a_task_that_moves_away_is_left_running_for_its_new_owner():
    owned = {"t1"}

    def export(t, start, progress):
        owned.clear()  # a rebalance gave the partition to another worker
        progress(5, 10)
        return 10

    r, board = runner({"export": export}, owns=lambda t: t.id in owned)
    queue(board, task("t1"))
    r.step()
    assert board.get("t1").state == "running"


def test_tasks_of_other_workers_are_left_alone():
    r, board = runner({"export": lambda t, s, p: 1}, owns=lambda t: False)
    queue(board, task("t1"))
    assert not r.step() and board.get("t1").state == "queued"


def test_a_bad_record_on_the_topic_is_counted_and_skipped():
    board = TaskBoard(Settings())
    board.take(b"x", b"not json")
    board.take(b"y", replace(task("y"), kind="export").encode().replace(b"export", b"rm"))
    assert board.errors == 2 and board.all() == []


def test_a_task_is_run_once_though_the_board_lags_behind_its_records():
    runs = []
    r, board = runner({"export": lambda t, s, p: runs.append(t.id) or 1})
    r.out.lag = True  # the board never shows what the runner wrote
    queue(board, task("t1"))
    while r.step():
        pass
    assert runs == ["t1"] and [t.state for t in r.out.records] == ["running", "done"]


@pytest.mark.parametrize(("params", "field"), [
    ({"partition": 0, "start": 5, "end": 5}, "params.end"),
    ({"partition": -1, "start": 0, "end": 5}, "params.partition"),
    ({"partition": 0, "start": "0", "end": 5}, "params.start"),
])
def test_a_replay_range_must_be_offsets(params, field):
    with pytest.raises(InvalidEvent) as err:
        submission({"kind": "replay", "tenant": "a", "params": params}, "x")
    assert err.value.field == field
