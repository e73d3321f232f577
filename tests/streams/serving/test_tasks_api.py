"""``/tasks`` over HTTP: trainers submit and cancel tasks of their tenants, viewers see them;
a bad submission is a 400 naming the field; submissions and cancels are audited."""

from __future__ import annotations

import pytest

from streams.control.tasks import TaskBoard
from streams.serving.access import AccessControl, add_key
from streams.serving.api import create_serving_app
from streams.serving.snapshots import ModelStore
from streams.serving.tasks_api import TaskRoutes
from streams.settings import Settings
from tests.helpers import ServerThread
from tests.streams.serving.test_graphs import call

EXPORT = {"kind": "export", "tenant": "acme", "params": {"path": "/tmp/acme.snap"}}

pytestmark = pytest.mark.control


class Log:
    def __init__(self, board):
        self.board = board

    def write(self, task):
        self.board.take(task.id.encode(), task.encode())

    def cancel(self, task_id):
        self.board.take(f"cancel:{task_id}".encode(), b"{}")


@pytest.fixture()
def api(tmp_path):
    path = tmp_path / "keys.json"
    keys = {"viewer": add_key(path, "dash", "viewer", ["acme"]),
            "trainer": add_key(path, "labeller", "trainer", ["acme"]),
            "other": add_key(path, "g", "trainer", ["globex"])}
    board, audit = TaskBoard(Settings()), []
    app = create_serving_app(ModelStore(), access=AccessControl.from_file(path),
                             tasks=TaskRoutes(board, Log(board), audit.append))
    with ServerThread(app) as srv:
        srv.keys, srv.audit = keys, audit
        yield srv


def test_a_trainer_submits_sees_and_cancels_a_task_of_its_tenant(api):
    status, task = call(api.url("/tasks"), "POST", EXPORT, api.keys["trainer"])
    assert status == 202 and task["state"] == "queued" and task["submitted_by"] == "api:labeller"
    status, seen = call(api.url(f"/tasks/{task['id']}"), key=api.keys["viewer"])
    assert status == 200 and seen["kind"] == "export" and seen["cancel_requested"] is False
    listed = call(api.url("/tasks"), key=api.keys["viewer"])[1]["tasks"]
    assert [t["id"] for t in listed] == [task["id"]]
    assert call(api.url("/tasks"), key=api.keys["other"])[1]["tasks"] == []
    assert call(api.url(f"/tasks/{task['id']}"), key=api.keys["other"])[0] == 403
    assert call(api.url(f"/tasks/{task['id']}/cancel"), "POST", {}, api.keys["viewer"])[0] == 403
    status, body = call(api.url(f"/tasks/{task['id']}/cancel"), "POST", {}, api.keys["trainer"])
    assert status == 202 and body["cancel_requested"] is True
    assert call(api.url(f"/tasks/{task['id']}"), key=api.keys["viewer"])[1]["cancel_requested"]
    assert [(e.action, e.actor, e.detail["task"]) for e in api.audit] == [
        ("task.submitted", "api:labeller", task["id"]),
        ("task.cancelled", "api:labeller", task["id"])]


@pytest.mark.parametrize(("body", "key", "status", "field"), [
    ({**EXPORT, "kind": "reindex"}, "trainer", 400, "kind"),
    ({**EXPORT, "params": {}}, "trainer", 400, "params.path"),
    (EXPORT, "viewer", 403, None),
    (EXPORT, "other", 403, None),
])
def test_a_submission_refused(api, body, key, status, field):
    got, answer = call(api.url("/tasks"), "POST", body, api.keys[key])
    assert got == status and answer.get("field") == field
    assert call(api.url("/tasks"), key=api.keys["viewer"])[1]["tasks"] == []


def test_an_unknown_task_is_a_404_naming_the_id(api):
    status, body = call(api.url("/tasks/nope"), key=api.keys["viewer"])
    assert status == 404 and body["field"] == "id"
    assert call(api.url("/tasks?state=lost"), key=api.keys["viewer"])[1]["field"] == "state"
