"""A model set built from a spec learns and serves its graph: ensembles over the members
they name, the output the spec serves; a rebuild keeps what did not change."""

from __future__ import annotations

import numpy as np
import pytest

from streams.control.apply import build_model_set, rebuild
from streams.control.specs import parse
from streams.serving.ranking import Ranker
from streams.serving.snapshots import ModelStore, load_snapshot
from streams.state.model_sets import load_checkpoint, seal_model_set
from streams.training.trainer import Trainer
from tests.helpers import KEY, examples

GRAPH = {"members": {"lr": {"kind": "ftrl"}, "fm": {"kind": "fm"},
                     "ad": {"kind": "adpredictor"}},
         "ensembles": {"pair": {"kind": "average", "over": ["lr", "fm"]},
                       "all": {"kind": "stacking"}},
         "serve": "ensemble_pair"}

pytestmark = pytest.mark.control


def test_an_ensemble_combines_only_the_members_it_names():
    ms = build_model_set("t", parse(GRAPH))
    res = ms.process(examples(400))
    pair = (res.predictions["lr"] + res.predictions["fm"]) / 2
    assert np.allclose(res.predictions["ensemble_pair"], pair)
    assert not np.allclose(res.predictions["ensemble_pair"],
                           (res.predictions["lr"] + res.predictions["fm"]
                            + res.predictions["ad"]) / 3)


def test_serving_scores_the_spec_graph_and_ranks_by_its_output():
    ms = build_model_set("t", parse(GRAPH))
    ms.process(examples(400))
    snap = load_snapshot(seal_model_set(ms, KEY)[1], KEY)
    assert snap.serve == "ensemble_pair" and snap.over == {"pair": ["lr", "fm"],
                                                           "all": ["lr", "fm", "ad"]}
    X = [e.features for e in examples(20, start=1000)]
    both = (snap.score(X, "lr") + snap.score(X, "fm")) / 2
    assert np.allclose(snap.score(X, "ensemble_pair"), both)
    store = ModelStore()
    store.swap(snap)
    assert Ranker(store, "ensemble_stacking").output_for(snap, None) == "ensemble_pair"


def test_a_checkpoint_keeps_the_graph():
    ms = build_model_set("t", parse(GRAPH))
    ms.process(examples(100))
    back = load_checkpoint(seal_model_set(ms, KEY)[0], KEY)
    assert (back.over, back.spec, back.serve) == (ms.over, ms.spec, ms.serve)


def test_a_rebuild_keeps_unchanged_members_and_their_metrics():
    old = parse(GRAPH)
    ms = build_model_set("t", old)
    ms.process(examples(300))
    lr, seen = ms.models["lr"], ms.train_metrics["lr"].snapshot()["examples"]
    new = parse({**GRAPH, "members": {"lr": {"kind": "ftrl"},
                                      "fm": {"kind": "fm", "params": {"n_factors": 4}}},
                 "ensembles": {"pair": {"kind": "average", "over": ["lr", "fm"]}}})
    version = ms.version
    changed = rebuild(ms, old, new)
    assert changed == ["fm", "ensemble_pair"]  # fm changed, so the pair over it is new
    assert ms.models["lr"] is lr and ms.train_metrics["lr"].snapshot()["examples"] == seen
    assert "ad" not in ms.models and "ad" not in ms.train_metrics
    assert "ensemble_all" not in ms.train_metrics and ms.version == version + 1
    res = ms.process(examples(50, start=300))
    assert set(res.predictions) == {"lr", "fm", "ensemble_pair"}


def test_the_trainer_builds_from_a_tenant_spec_and_follows_its_changes():
    class Rec:
        def __init__(self, spec):
            self.spec = spec

    specs: dict = {}
    graph = parse(GRAPH)
    trainer = Trainer(lambda: build_model_set("x", graph).models, specs=lambda: specs,
                      default=None)
    specs["t"] = Rec(graph)
    trainer.process(examples(100))
    assert set(trainer.sets["t"].models) == {"lr", "fm", "ad"}
    assert trainer.sync_specs() == {}
    specs["t"] = Rec(parse({"members": {"lr": {"kind": "ftrl"}}}))
    assert trainer.sync_specs() == {"t": []}
    assert list(trainer.sets["t"].models) == ["lr"]
