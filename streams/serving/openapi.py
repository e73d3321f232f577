"""The OpenAPI description of the serving API (served at /openapi.json)."""

from __future__ import annotations

import time

from streams.contracts.fields import (
    MAX_CLOCK_SKEW,
    MAX_DEADLINE_AHEAD,
    MAX_FEATURES,
    MAX_INT,
    MAX_MAGNITUDE,
    MAX_NAME,
    MAX_STRING,
    MAX_WEIGHT,
)
from streams.serving.access import PROTECTED
from streams.serving.overload import BUSY, UNLIMITED

FEATURES = {"type": "object", "maxProperties": MAX_FEATURES,
            "propertyNames": {"maxLength": MAX_NAME},
            "additionalProperties": {"anyOf": [
                {"type": "string", "maxLength": MAX_STRING},
                # an integer written as one (no fraction, no exponent) may reach 2^63 - 1;
                # JSON Schema cannot tell it from a float, which stops at 1e15
                {"type": "number", "minimum": -MAX_MAGNITUDE, "maximum": MAX_MAGNITUDE,
                 "description": f"at most {MAX_MAGNITUDE:g} in magnitude; an integer written "
                 f"without fraction or exponent may reach {MAX_INT}"},
                {"type": "boolean"}, {"type": "null"}]}}
ID = {"anyOf": [{"type": "string", "minLength": 1, "maxLength": 128},
               {"type": "integer", "minimum": -MAX_INT - 1, "maximum": 2**64 - 1}]}
ERROR = {"type": "object", "required": ["error"],
         "properties": {"error": {"type": "string"}, "field": {"type": "string"}}}
CANDIDATE = {"type": "object", "required": ["ad_id"],
             "properties": {"ad_id": ID,
                            "features": FEATURES}}
RECOMMEND_REQUEST = {
    "type": "object", "required": ["tenant", "user", "candidates"],
    "properties": {
        "tenant": {"type": "string", "pattern": "^[A-Za-z0-9_.\\-]{1,64}$"},
        "request_id": ID,
        "user": FEATURES, "context": FEATURES,
        "candidates": {"type": "array", "minItems": 1, "maxItems": 1000, "items": CANDIDATE},
        "model": {"type": "string"},
        "deadline": {"type": ["number", "null"], "minimum": 0,
                     "description": "Unix time (s) after which the answer is of no use: a "
                     "request still unscored then is answered 503, not scored; at most a day "
                     "ahead"},
    },
}
RANKED = {"type": "array", "items": {"type": "object", "properties": {
    "ad_id": {"type": "string"}, "score": {"type": "number"}}}}
RECOMMEND_RESPONSE = {"type": "object", "properties": {
    "request_id": {"type": "string"}, "tenant": {"type": "string"},
    "model_version": {"type": "string"}, "model": {"type": "string"},
    "fallback": {"type": "boolean"}, "ranked": RANKED, "took_ms": {"type": "number"}}}
EXAMPLE = {"type": "object", "required": ["features", "label"], "properties": {
    "id": ID,
    "event_time": {"type": "number", "minimum": 0, "description": "Unix seconds, at most "
                   f"{MAX_CLOCK_SKEW:.0f} s ahead of the replica's clock"},
    "features": FEATURES, "label": {"enum": [0, 1, False, True]},
    "weight": {"type": "number", "minimum": 0, "maximum": MAX_WEIGHT, "default": 1,
               "description": "how many examples this one counts as, in learning and in every "
                              "metric"},
    "source": {"type": "string", "minLength": 1, "maxLength": 64, "default": "api",
               "description": "where the example comes from (a label of its rows)"},
    "test": {"type": "boolean", "default": False,
             "description": "a test row: scored by every model, learned by none"}}}
EXAMPLES_REQUEST = {"type": "object", "required": ["tenant", "examples"], "properties": {
    "tenant": {"type": "string", "pattern": "^[A-Za-z0-9_.\\-]{1,64}$"},
    "examples": {"type": "array", "minItems": 1, "maxItems": 10000, "items": EXAMPLE}}}
PREDICT_REQUEST = {"type": "object", "required": ["tenant", "features"], "properties": {
    "tenant": {"type": "string", "pattern": "^[A-Za-z0-9_.\\-]{1,64}$"},
    "features": FEATURES, "model": {"type": "string"}}}

MEMBER = {"type": "object", "required": ["kind"], "additionalProperties": False, "properties": {
    "kind": {"type": "string", "description": "A learner kind: ftrl, fm, river_logreg, "
             "river_fm, adpredictor, river_ht, forest, deep"},
    "params": {"type": "object", "description": "Overrides of the kind's parameters"}}}
ENSEMBLE = {"type": "object", "required": ["kind"], "additionalProperties": False,
            "properties": {
                "kind": {"type": "string", "enum": ["average", "weighted", "vote", "stacking"]},
                "over": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                "threshold": {"type": "number", "minimum": 0.5, "maximum": 1},
                "policy": {"type": "string"}}}
GRAPH_SPEC = {"type": "object", "required": ["members"], "additionalProperties": False,
              "properties": {
                  "members": {"type": "object", "minProperties": 1, "maxProperties": 16,
                              "additionalProperties": MEMBER},
                  "ensembles": {"type": "object", "additionalProperties": ENSEMBLE},
                  "serve": {"type": "string"}}}
GRAPH_RECORD = {"type": "object", "properties": {
    "tenant": {"type": "string"}, "version": {"type": "integer"}, "default": {"type": "boolean"},
    "spec": GRAPH_SPEC, "applied_by": {"type": "string"}, "applied_at": {"type": "number"}}}
GRAPH_APPLIED = {"type": "object", "properties": {
    "tenant": {"type": "string"}, "version": {"type": "integer"}, "default": {"type": "boolean"},
    "applied_by": {"type": "string"}}}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _secured(paths: dict, secured: bool = True) -> dict:
    """Every protected operation: the API key, and the 401/403 answers (none of it for a
    replica without a keys file: its API is open)."""
    if not secured:
        return paths
    denied = {"401": {"description": "No or unknown API key", **_json(ERROR)},
              "403": {"description": "The key's role or tenants do not allow it",
                      **_json(ERROR)}}
    for path, ops in paths.items():
        for method, op in ops.items():
            if path in PROTECTED or (method.upper(), path) in PROTECTED:
                op["security"] = [{"apiKey": []}, {"bearer": []}]
                op["responses"].update(denied)
    return paths


TASK = {"type": "object", "properties": {
    "id": {"type": "string"}, "kind": {"type": "string"}, "tenant": {"type": "string"},
    "params": {"type": "object"}, "priority": {"type": "integer"},
    "state": {"type": "string", "enum": ["queued", "running", "done", "failed", "cancelled"]},
    "done": {"type": "integer"}, "total": {"type": ["integer", "null"]},
    "error": {"type": "string"}, "submitted_by": {"type": "string"},
    "submitted_at": {"type": "number"}, "updated_at": {"type": "number"},
    "worker": {"type": "string"}}}
TASK_REQUEST = {"type": "object", "required": ["kind", "tenant"], "properties": {
    "kind": {"type": "string",
             "enum": ["train-file", "backfill", "evaluate", "replay", "export"]},
    "tenant": {"type": "string", "pattern": "^[A-Za-z0-9_.\\-]{1,64}$"},
    "params": {"type": "object", "description": "train-file: path, label (positive, "
               "time_column, test_share, rate, weight_column); backfill: url, query, label "
               "(id_column, time_column, weight_column); evaluate: path, label (positive, "
               "time_column, rate, weight_column); replay: partition, start, end "
               "(source_tenant); export: path"},
    "priority": {"type": "integer", "minimum": -10, "maximum": 10}}}


def _task_ops(bad: dict) -> dict:
    task_id = [{"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}]
    missing = {"description": "No such task", **_json(ERROR)}
    return {
        "/tasks": {
            "post": {"summary": "Submit a task (trainer): a file or a query to learn, or an "
                                "export of the tenant's models; a worker runs it",
                     "requestBody": {"required": True, **_json(TASK_REQUEST)},
                     "responses": {"202": {"description": "Queued", **_json(TASK)},
                                   "400": bad, "503": {"description": "Not queued",
                                                       **_json(ERROR)}}},
            "get": {"summary": "Tasks of the caller's tenants, newest first",
                    "parameters": [{"name": "state", "in": "query", "required": False,
                                    "schema": {"type": "string"}}],
                    "responses": {"200": {"description": "Tasks", **_json({
                        "type": "object", "properties": {"tasks": {"type": "array",
                                                                   "items": TASK}}})},
                                  "400": bad}}},
        "/tasks/{id}": {"get": {"summary": "A task's state, progress and error",
                                "parameters": task_id,
                                "responses": {"200": {"description": "The task",
                                                      **_json(TASK)}, "404": missing}}},
        "/tasks/{id}/cancel": {"post": {
            "summary": "Cancel a task (trainer); a running one stops at its next chunk",
            "parameters": task_id,
            "responses": {"202": {"description": "Cancel requested"}, "404": missing,
                          "409": {"description": "Done, failed or cancelled already",
                                  **_json(ERROR)}}}},
    }


def _graph_ops(bad: dict) -> dict:
    tenant = [{"name": "tenant", "in": "path", "required": True,
               "schema": {"type": "string", "pattern": "^[A-Za-z0-9_.\\-]{1,64}$"}}]
    shown = {"description": "The tenant's model graph (default: true when it has none of its "
                            "own)", **_json(GRAPH_RECORD)}
    unavailable = {"description": "No model-specs topic, or the broker did not take it",
                   **_json(ERROR)}
    return {
        "get": {"summary": "A tenant's model graph", "parameters": tenant,
                "responses": {"200": shown, "400": bad}},
        "put": {"summary": "Apply a model graph (admin): members, ensembles over chosen "
                           "members, the output served; workers rebuild without a restart",
                "parameters": tenant,
                "requestBody": {"required": True, **_json(GRAPH_SPEC)},
                "responses": {"200": {"description": "Published", **_json(GRAPH_APPLIED)},
                              "400": bad, "503": unavailable}},
        "delete": {"summary": "Back to the default model graph (admin)",
                   "parameters": tenant,
                   "responses": {"200": {"description": "Published", **_json(GRAPH_APPLIED)},
                                 "400": bad, "503": unavailable,
                                 "404": {"description": "The tenant has no graph of its own",
                                         **_json(ERROR)}}},
    }


def _now_bounded(doc: dict, now: float) -> dict:
    """The times' upper bounds as of ``now`` (the document is made per request)."""
    examples = doc["paths"]["/examples"]["post"]["requestBody"]["content"]
    item = examples["application/json"]["schema"]["properties"]["examples"]["items"]
    item["properties"]["event_time"] = {**item["properties"]["event_time"],
                                        "maximum": now + MAX_CLOCK_SKEW}
    rec = doc["paths"]["/recommend"]["post"]["requestBody"]["content"]["application/json"]
    props = rec["schema"]["properties"]
    # a deadline already past is shed with a 503 (see the response): not a request to make
    props["deadline"] = {**props["deadline"], "minimum": now,
                         "maximum": now + MAX_DEADLINE_AHEAD}
    return doc


def spec(secured: bool = True, graphs: bool = True, tasks: bool = True,
         cluster: bool = True) -> dict:
    """The document of a replica: its protected operations secured when it has keys, the
    optional routes (model graphs, tasks, cluster) when it serves them."""
    doc = _spec(secured)
    for flag, paths in ((graphs, ("/tenants/{tenant}/models",)),
                        (tasks, ("/tasks", "/tasks/{id}", "/tasks/{id}/cancel")),
                        (cluster, ("/cluster",))):
        if not flag:
            for path in paths:
                doc["paths"].pop(path, None)
    for path, ops in doc["paths"].items():
        if path in UNLIMITED:
            continue
        for op in ops.values():  # any call may be shed while the replica runs behind
            answers = op["responses"]
            if "503" in answers:
                answers["503"] = {**answers["503"],
                                  "description": f"{answers['503']['description']}; or {BUSY}"}
            else:
                answers["503"] = {"description": BUSY.capitalize(), **_json(ERROR)}
    return _now_bounded(doc, time.time())


def _spec(secured: bool) -> dict:
    bad = {"description": "Invalid body; the message names the field", **_json(ERROR)}
    quota = {"description": "The tenant is over its quota (see Retry-After)", **_json(ERROR)}
    return {
        "openapi": "3.1.0",
        "info": {"title": "aimass serving API", "version": "1.0.0",
                 "description": "Protected operations need an API key when the replica has a "
                                "keys file (AIMASS_API_KEYS); without one the API is open."},
        "components": {"securitySchemes": {
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "bearer": {"type": "http", "scheme": "bearer"}}},
        "paths": _secured({
            "/examples": {"post": {
                "summary": "Hand over labelled examples; the models learn them",
                "requestBody": {"required": True, **_json(EXAMPLES_REQUEST)},
                "responses": {"202": {"description": "Accepted for training", **_json({
                    "type": "object", "properties": {"accepted": {"type": "integer"},
                                                     "ids": {"type": "array"}}})},
                              "400": bad, "429": quota,
                              "503": {"description": "No training topic", **_json(ERROR)}}}},
            "/recommend": {"post": {
                "summary": "Rank candidate ads by click probability",
                "requestBody": {"required": True, **_json(RECOMMEND_REQUEST)},
                "responses": {"200": {"description": "Ranked candidates",
                                      **_json(RECOMMEND_RESPONSE)}, "400": bad, "429": quota,
                              "404": {"description": "Unknown model output", **_json(ERROR)},
                              "503": {"description": "Overloaded: the deadline passed, or "
                                      "would before the request is answered, when it came to "
                                      "be scored (see Retry-After)", **_json(ERROR)}}}},
            "/predict": {"post": {
                "summary": "Click probability of one labelled-style example",
                "requestBody": {"required": True, **_json(PREDICT_REQUEST)},
                "responses": {"200": {"description": "Probability", **_json({
                    "type": "object", "properties": {"p": {"type": "number"},
                                                     "model_version": {"type": "string"}}})},
                              "400": bad, "429": quota,
                              "404": {"description": "No model for the tenant",
                                                  **_json(ERROR)}}}},
            "/models": {"get": {"summary": "Versions, ages and live metrics",
                                "responses": {"200": {"description": "Models by tenant"}}}},
            "/healthz": {"get": {"summary": "Alive", "responses": {"200": {"description": "ok"}}}},
            "/readyz": {"get": {"summary": "Ready: has read the model-updates topic",
                                "responses": {"200": {"description": "ready"},
                                              "503": {"description": "not yet"}}}},
            "/tenants/{tenant}/models": _graph_ops(bad),
            **_task_ops(bad),
            "/cluster": {"get": {
                "summary": "The worker group, its partitions and lag, each tenant's trainer, "
                           "and this replica's served versions (as aimass status --json)",
                "responses": {"200": {"description": "The cluster view", **_json({
                    "type": "object", "properties": {
                        "group": {"type": "string"}, "state": {"type": "string"},
                        "members": {"type": "array"}, "lag": {"type": "array"},
                        "workers": {"type": "array"}, "tenants": {"type": "array"},
                        "replica": {"type": "object"}}})},
                              "503": {"description": "The broker cannot be read now",
                                      **_json(ERROR)}}}},
            "/noop": {"post": {"summary": "Parses the body, answers nothing (latency floor)",
                               "requestBody": {"required": True, **_json({"type": "object"})},
                               "responses": {"200": {"description": "ok"},
                                             "400": bad}}},
        }, secured),
    }
