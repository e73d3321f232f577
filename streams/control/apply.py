"""A tenant's model set built from, or rebuilt to, a model graph (:mod:`streams.control.specs`).
Kafka-free.

A rebuild keeps what did not change: a member whose kind and parameters are the same keeps its
learned state and metrics; an ensemble whose spec and members are the same keeps its learned
weights. Everything else starts fresh; members and ensembles no longer in the spec go, with
their metrics.

>>> from streams.control.specs import parse
>>> a = parse({"members": {"lr": {"kind": "ftrl"}, "fm": {"kind": "fm"}},
...            "ensembles": {"avg": {"kind": "average"}}})
>>> ms = build_model_set("acme", a)
>>> kept = ms.models["lr"]
>>> b = parse({"members": {"lr": {"kind": "ftrl"}, "fm": {"kind": "fm", "params": {"lr": 0.1}}},
...            "ensembles": {"avg": {"kind": "average", "over": ["lr"]}}})
>>> rebuild(ms, a, b)
['fm', 'ensemble_avg']
>>> ms.models["lr"] is kept, ms.over
(True, {'avg': ['lr']})
"""

from __future__ import annotations

from collections.abc import Sequence

from streams.control.specs import ENSEMBLE_PREFIX, ModelSpec
from streams.training.columns import ColumnSchema
from streams.training.model_set import ModelSet


def _encoded(spec: ModelSpec, default: bool) -> str:
    return "" if default else spec.encode().decode()


def build_model_set(tenant: str, spec: ModelSpec, crosses: Sequence = (), device: str = "auto",
                    default: bool = False, **kwargs) -> ModelSet:
    """A fresh model set of ``spec`` (``default``: it is the configured default, recorded as
    such, so that a later default is not taken for a change)."""
    models = {n: spec.build_member(n, crosses, device) for n in spec.members}
    return ModelSet(tenant, models, ensembles=spec.build_ensembles(),
                    over={e: list(s.over) for e, s in spec.ensembles.items()},
                    owner={n: n for n, m in models.items() if m.outputs is None},
                    spec=_encoded(spec, default), serve=spec.serve or "",
                    columns=ColumnSchema(spec.schema), **kwargs)


def rebuild(ms: ModelSet, old: ModelSpec, new: ModelSpec, crosses: Sequence = (),
            device: str = "auto", default: bool = False) -> list[str]:
    """Make ``ms`` the model set of ``new`` (it was of ``old``); the outputs made anew."""
    changed: list[str] = []
    models = {}
    for name, member in new.members.items():
        if old.members.get(name) == member and name in ms.models:
            models[name] = ms.models[name]
        else:
            models[name] = new.build_member(name, crosses, device)
            changed.append(name)
    gone = set(ms.models) - set(models) | set(changed)
    for output, owner in ms.owner.items():
        if owner in gone:
            _forget(ms, output)
    for name in gone:
        ms.learn_seconds.pop(name, None)
        ms.good_states.pop(name, None)
    ensembles = {}
    for name, ens in new.ensembles.items():
        same = old.ensembles.get(name) == ens and not set(ens.over) & set(changed)
        if same and name in ms.ensembles:
            ensembles[name] = ms.ensembles[name]
        else:
            ensembles[name] = new.build_combiner(name)
            changed.append(ENSEMBLE_PREFIX + name)
            _forget(ms, ENSEMBLE_PREFIX + name)
    for name in set(ms.ensembles) - set(ensembles):
        _forget(ms, ENSEMBLE_PREFIX + name)
    owner = {}  # in the new order: outputs known of kept models, a single output's own name
    for name, model in models.items():
        outs = [o for o, w in ms.owner.items() if w == name] if name not in changed else []
        for out in outs or ([name] if model.outputs is None else []):
            owner[out] = name
    ms.models, ms.ensembles, ms.owner = models, ensembles, owner
    ms.over = {e: list(s.over) for e, s in new.ensembles.items()}
    ms.spec, ms.serve = _encoded(new, default), new.serve or ""
    ms.columns.overrides = dict(new.schema)  # the inferred kinds stay
    for name in models:
        ms.learn_seconds.setdefault(name, 0.0)
    ms.version += 1  # a new snapshot for serving
    return changed


def _forget(ms: ModelSet, output: str) -> None:
    for metrics in (ms.train_metrics, ms.holdout_metrics, ms.test_metrics):
        metrics.pop(output, None)
