"""Model graph specs: every refusal names the path in the spec; what validates round-trips."""

from __future__ import annotations

import pytest

from streams.control.exceptions import SpecError
from streams.control.specs import default_spec, load, parse

FM = {"kind": "fm"}

REFUSED = [
    ([], "", "must be an object"),
    ({}, "members", "at least one member"),
    ({"members": {"fm": FM}, "extra": 1}, "extra", "unknown field"),
    ({"members": {"Bad Name": FM}}, "members.Bad Name", "is not a name"),
    ({"members": {"fm": {"kind": "gbm"}}}, "members.fm.kind", "unknown learner kind 'gbm'"),
    ({"members": {"fm": {"kind": "fm", "size": 3}}}, "members.fm.size", "unknown field"),
    ({"members": {"fm": {"kind": "fm", "params": {"rank": 3}}}}, "members.fm.params.rank",
     "unknown parameter of fm"),
    ({"members": {"fm": {"kind": "fm", "params": {"lr": 0}}}}, "members.fm.params.lr",
     "must be positive"),
    ({"members": {"fm": {"kind": "fm", "params": {"lr": 1e308}}}}, "members.fm.params.lr",
     "finite number under 1e9"),
    ({"members": {"fm": {"kind": "fm", "params": {"lr": {"a": 1}}}}}, "members.fm.params.lr",
     "must be a number"),
    ({"members": {"fm": FM}, "ensembles": {"v": {"kind": "boost"}}}, "ensembles.v.kind",
     "unknown ensemble kind"),
    ({"members": {"fm": FM}, "ensembles": {"v": {"kind": "vote", "over": []}}},
     "ensembles.v.over", "at least one member"),
    ({"members": {"fm": FM}, "ensembles": {"v": {"kind": "vote", "over": ["x"]}}},
     "ensembles.v.over[0]", "'x' is not a member"),
    ({"members": {"fm": FM}, "ensembles": {"a": {"kind": "average", "over": ["b"]},
                                           "b": {"kind": "average", "over": ["a"]}}},
     "ensembles.a.over[0]", "is an ensemble"),
    ({"members": {"fm": FM}, "ensembles": {"fm": {"kind": "average"}}}, "ensembles.fm",
     "also a member's name"),
    ({"members": {"fm": FM}, "ensembles": {"v": {"kind": "vote", "threshold": 2}}},
     "ensembles.v.threshold", "from 0.5 to 1"),
    ({"members": {"fm": FM}, "ensembles": {"v": {"kind": "vote", "policy": "coin"}}},
     "ensembles.v.policy", "unknown vote policy"),
    ({"members": {"fm": FM}, "serve": "ensemble_x"}, "serve", "is not an output"),
    ({"members": {"fm": FM}, "quotas": {"qps": 5}}, "quotas.qps", "unknown quota"),
    ({"members": {"fm": FM}, "quotas": {"requests_per_s": -5}}, "quotas.requests_per_s",
     "positive number"),
    ({"members": {"fm": FM, "lr": {"kind": "ftrl"}}, "quotas": {"max_models": 1}},
     "quotas.max_models", "at least the 2 members"),
    ({"members": {"fm": FM}, "schema": {"zip": "text"}}, "schema.zip", "unknown column kind"),
    ({"members": {"fm": FM}, "schema": {1: "number"}}, "schema", "a column name is text"),
    ({"members": {"fm": FM}, "schema": {"": "number"}}, "schema", "1 to 128 characters"),
]

pytestmark = pytest.mark.control


@pytest.mark.parametrize(("doc", "path", "problem"), REFUSED)
def test_a_bad_spec_is_refused_naming_its_path(doc, path, problem):
    with pytest.raises(SpecError) as err:
        parse(doc)
    assert err.value.path == path
    assert problem in err.value.problem


def test_a_spec_round_trips_through_its_document():
    spec = load("""
members:
  fast: {kind: ftrl, params: {alpha: 0.1}}
  fm: {kind: fm, params: {n_factors: 4}}
  trees: {kind: forest, params: {n_trees: 3}}
ensembles:
  blend: {kind: stacking, over: [fast, trees]}
  poll: {kind: vote, over: [fast, fm, trees], threshold: 0.7, policy: abstain}
serve: ensemble_blend
quotas: {requests_per_s: 200, examples_per_s: 5000, max_models: 4}
""")
    assert parse(spec.to_doc()) == spec
    assert spec.outputs() == ["fast", "fm", "trees", "ensemble_blend", "ensemble_poll"]
    assert spec.build_member("fast").alpha == 0.1
    assert spec.quotas == {"requests_per_s": 200.0, "examples_per_s": 5000.0, "max_models": 4}


def test_yaml_that_would_build_objects_is_refused():
    with pytest.raises(SpecError, match="not JSON or YAML"):
        load("members: !!python/object/apply:os.system ['true']")


def test_the_default_spec_is_the_environment_variables():
    spec = default_spec(["ftrl", "fm"], ["average", "vote"], 0.7, "abstain")
    assert list(spec.members) == ["ftrl", "fm"]
    assert spec.ensembles["vote"].over == ("ftrl", "fm")
    assert (spec.ensembles["vote"].threshold, spec.ensembles["vote"].policy) == (0.7, "abstain")
