"""The OpenAPI description of the serving API (served at /openapi.json)."""

from __future__ import annotations

from streams.serving.access import PROTECTED

FEATURES = {"type": "object", "additionalProperties": {
    "oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "null"}]}}
ERROR = {"type": "object", "required": ["error"],
         "properties": {"error": {"type": "string"}, "field": {"type": "string"}}}
CANDIDATE = {"type": "object", "required": ["ad_id"],
             "properties": {"ad_id": {"type": "string", "minLength": 1, "maxLength": 128},
                            "features": FEATURES}}
RECOMMEND_REQUEST = {
    "type": "object", "required": ["tenant", "user", "candidates"],
    "properties": {
        "tenant": {"type": "string", "pattern": "^[A-Za-z0-9_.\\-]{1,64}$"},
        "request_id": {"type": "string", "minLength": 1, "maxLength": 128},
        "user": FEATURES, "context": FEATURES,
        "candidates": {"type": "array", "minItems": 1, "maxItems": 1000, "items": CANDIDATE},
        "model": {"type": "string"},
        "deadline": {"type": "number", "description": "Unix time (s) after which the answer is "
                     "of no use: a request still unscored then is answered 503, not scored"},
    },
}
RANKED = {"type": "array", "items": {"type": "object", "properties": {
    "ad_id": {"type": "string"}, "score": {"type": "number"}}}}
RECOMMEND_RESPONSE = {"type": "object", "properties": {
    "request_id": {"type": "string"}, "tenant": {"type": "string"},
    "model_version": {"type": "string"}, "model": {"type": "string"},
    "fallback": {"type": "boolean"}, "ranked": RANKED, "took_ms": {"type": "number"}}}
EXAMPLE = {"type": "object", "required": ["features", "label"], "properties": {
    "id": {"type": "string", "minLength": 1, "maxLength": 128},
    "event_time": {"type": "number", "minimum": 0},
    "features": FEATURES, "label": {"type": "integer", "enum": [0, 1]}}}
EXAMPLES_REQUEST = {"type": "object", "required": ["tenant", "examples"], "properties": {
    "tenant": {"type": "string", "pattern": "^[A-Za-z0-9_.\\-]{1,64}$"},
    "examples": {"type": "array", "minItems": 1, "maxItems": 10000, "items": EXAMPLE}}}
PREDICT_REQUEST = {"type": "object", "required": ["tenant", "features"], "properties": {
    "tenant": {"type": "string", "pattern": "^[A-Za-z0-9_.\\-]{1,64}$"},
    "features": FEATURES, "model": {"type": "string"}}}


def _json(schema: dict) -> dict:
    return {"content": {"application/json": {"schema": schema}}}


def _secured(paths: dict) -> dict:
    """Every protected operation: the API key, and the 401/403 answers."""
    denied = {"401": {"description": "No or unknown API key", **_json(ERROR)},
              "403": {"description": "The key's role or tenants do not allow it",
                      **_json(ERROR)}}
    for path, ops in paths.items():
        if path in PROTECTED:
            for op in ops.values():
                op["security"] = [{"apiKey": []}, {"bearer": []}]
                op["responses"].update(denied)
    return paths


def spec() -> dict:
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
                              "503": {"description": "Overloaded: the deadline passed before "
                                      "scoring (see Retry-After)", **_json(ERROR)}}}},
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
            "/noop": {"post": {"summary": "Parses the body, answers nothing (latency floor)",
                               "responses": {"200": {"description": "ok"},
                                             "400": bad}}},
        }),
    }
