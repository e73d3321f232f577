"""The trainer, without Kafka: dedupe by id, holdout, checkpoints that continue identically."""

from __future__ import annotations

import numpy as np
import pytest

from learners.registry import build
from streams.settings import Settings
from streams.training.model_set import is_holdout
from streams.training.trainer import Trainer, warm_up
from tests.helpers import examples


def factory():
    return build(["ftrl", "river_logreg"])


def test_each_id_is_learned_once():
    tr = Trainer(factory)
    exs = examples(500)
    tr.process(exs[:300])
    res = tr.process(exs[200:500] + exs[:10])  # 110 seen before
    r = res["t"]
    assert r.duplicates == 110 and len(r.examples) == 200
    assert tr.sets["t"].examples_learned == 500


def test_tenants_are_isolated():
    tr = Trainer(factory)
    tr.process(examples(300, "a"))
    assert set(tr.sets) == {"a"}
    tr.process(examples(10, "b"))
    assert tr.sets["b"].examples_learned == 10 and tr.sets["a"].examples_learned == 300
    assert tr.sets["a"].models["ftrl"] is not tr.sets["b"].models["ftrl"]


def test_holdout_is_deterministic_and_never_learned():
    ids = [f"x{i}" for i in range(10_000)]
    share = np.mean([is_holdout(i, 0.1) for i in ids])
    assert 0.09 < share < 0.11
    assert [is_holdout(i, 0.1) for i in ids[:50]] == [is_holdout(i, 0.1) for i in ids[:50]]
    tr = Trainer(factory, holdout_fraction=0.2)
    res = tr.process(examples(1000))["t"]
    held = int(res.holdout.sum())
    ms = tr.sets["t"]
    assert ms.examples_learned == 1000 - held
    m = ms.metrics()["ftrl"]
    assert m["holdout_examples"] == held and m["examples"] == 1000 - held


def test_checkpoint_round_trip_continues_identically():
    a = Trainer(factory)
    exs = examples(1200)
    a.process(exs[:700])
    restored = Trainer(factory, restored={"t": a.sets["t"].copy()})
    ra = a.process(exs[700:])["t"]
    rb = restored.process(exs[700:])["t"]
    for name in ra.predictions:
        np.testing.assert_allclose(ra.predictions[name], rb.predictions[name])
    assert restored.process(exs[:50])["t"].duplicates == 50  # learned ids came along


def test_test_rows_are_scored_never_learned_and_reported_apart():
    tr = Trainer(factory, holdout_fraction=0.1)
    exs = examples(1000)
    for ex in exs[::4]:
        ex.test = True  # 250 test rows
    res = tr.process(exs)["t"]
    ms = tr.sets["t"]
    m = ms.metrics()["ftrl"]
    assert m["test_examples"] == 250 and 0 < m["test_logloss"] < 1
    assert m["examples"] + m["holdout_examples"] + m["test_examples"] == 1000
    assert ms.examples_learned == m["examples"] and int((~res.holdout).sum()) == m["examples"]
    # the same stream without its test rows learns exactly the same
    plain = Trainer(factory, holdout_fraction=0.1)
    plain.process([e for e in exs if not e.test])
    learned = [e for e in examples(50, start=2000)]
    np.testing.assert_allclose(tr.process(learned)["t"].predictions["ftrl"],
                               plain.process(learned)["t"].predictions["ftrl"])


def test_a_state_saved_before_test_rows_existed_still_loads():
    from streams.training.model_set import ModelSet

    tr = Trainer(factory)
    tr.process(examples(100))
    state = tr.sets["t"].to_state()
    del state["test_metrics"]
    ms = ModelSet.from_state(state)
    assert ms.test_metrics == {} and ms.examples_learned == 100
    ms.process(examples(10, start=100))
    assert ms.metrics()["ftrl"]["test_examples"] == 0


def test_weights_scale_learning_and_every_metric():
    from dataclasses import replace

    from learners.metrics import log_loss
    from streams.training.model_set import ModelSet

    exs = examples(600)
    plain = ModelSet("t", build(["ftrl"]))
    heavy = ModelSet("t", build(["ftrl"]))
    res_plain = plain.process(exs)
    weights = [3.0 if e.label else 1.0 for e in exs]
    res = heavy.process([replace(e, weight=w) for e, w in zip(exs, weights, strict=True)])
    assert not np.allclose(res.predictions["ftrl"][1:], res_plain.predictions["ftrl"][1:])
    m = heavy.metrics()["ftrl"]
    y = [e.label for e in exs]
    assert m["examples"] == 600 and m["weight"] == sum(weights)
    assert m["logloss"] == pytest.approx(log_loss(y, res.predictions["ftrl"], weights), rel=1e-9)
    zero = ModelSet("t", build(["ftrl"]))  # weight 0: scored and counted, nothing learned
    zero.process([replace(e, weight=0.0) for e in exs[:300]])
    fresh = build(["ftrl"])["ftrl"]
    np.testing.assert_allclose(zero.models["ftrl"].predict_proba_many([e.features for e in exs]),
                               fresh.predict_proba_many([e.features for e in exs]))


def test_a_value_of_the_wrong_type_for_its_column_is_refused_not_learned():
    from dataclasses import replace

    from streams.control.apply import build_model_set
    from streams.control.specs import parse
    from streams.training.model_set import ModelSet

    exs = examples(300)  # "score" is a float in every row
    bad = {120: "high", 250: True}
    batch = [replace(e, features={**e.features, "score": bad[i]}) if i in bad else e
             for i, e in enumerate(exs)]
    ms = ModelSet("t", build(["ftrl"]))
    res = ms.process(batch)
    assert [(e.id, fld) for e, fld, _ in res.refused] == [("e120", "features.score"),
                                                          ("e250", "features.score")]
    assert "the tenant's column is a number" in res.refused[0][2]
    assert len(res.examples) == 298 and ms.examples_handled == 298
    assert ms.columns.kinds["u_user_id"] == "category" and ms.columns.kinds["score"] == "number"
    assert ms.process([exs[120]]).examples == [exs[120]]  # its id was not taken: sent right, learned
    again = ModelSet.from_state(ms.to_state())  # the kinds are part of the checkpoint
    assert again.process([batch[250]]).refused[0][1] == "features.score"
    spec = parse({"members": {"ftrl": {"kind": "ftrl"}}, "schema": {"score": "any"}})
    lenient = build_model_set("t", spec)  # the tenant's graph says: take anything there
    assert lenient.process(batch).refused == []


def test_warm_up_learns_with_the_configured_kinds_and_combiners():
    ms = warm_up(Settings(models="ftrl,fm,deep", ensembles="average,stacking,vote"))
    assert set(ms.models) == {"ftrl", "fm"}  # torch warms up on its own
    assert set(ms.ensembles) == {"average", "stacking", "vote"}
    assert ms.ensembles["vote"].decisions == 4  # each combiner went through the examples
