"""The per-step bench of the worker's stages runs on the MovieLens stream and times each step."""

from __future__ import annotations

import sys

import orjson

from ops.bench import stages

STEPS = {"decode requests", "decode feedback", "request rows", "feedback rows",
         "join (per example)", "encode examples", "rank requests", "encode recommendations",
         "learn (per example)"}


def test_every_step_is_timed(tmp_path, monkeypatch, movielens_dir):
    out = tmp_path / "stages.json"
    monkeypatch.setattr(sys, "argv", ["stages", "--examples", "1200", "--repeat", "1",
                                      "--models", "ftrl,fm", "--ensembles", "stacking",
                                      "--json", str(out)])
    stages.main()
    doc = orjson.loads(out.read_bytes())
    assert {r["step"] for r in doc["rows"]} == STEPS
    assert all(r["us_per_unit"] > 0 and r["units"] > 0 for r in doc["rows"])
    assert (doc["models"], doc["ensembles"], doc["examples"]) == ("ftrl,fm", "stacking", 1200)
