"""A tenant's model graph: its members (a learner kind and parameters each), the ensembles
over chosen members, and the output serving ranks by. Validated before anything uses it;
an error names the path in the spec.

>>> spec = parse({"members": {"lr": {"kind": "ftrl", "params": {"alpha": 0.1}},
...                           "fm": {"kind": "fm"}},
...               "ensembles": {"blend": {"kind": "stacking", "over": ["lr", "fm"]}},
...               "serve": "ensemble_blend"})
>>> sorted(spec.members), spec.ensembles["blend"].over, spec.serve
(['fm', 'lr'], ('lr', 'fm'), 'ensemble_blend')
>>> parse({"members": {"fm": {"kind": "fm"}},
...        "ensembles": {"v": {"kind": "vote", "over": ["fm", "gone"]}}})
Traceback (most recent call last):
...
streams.control.exceptions.SpecError: ensembles.v.over[1]: 'gone' is not a member; members: fm
>>> parse({"members": {"fm": {"kind": "fm", "params": {"lr": -1}}}})
Traceback (most recent call last):
...
streams.control.exceptions.SpecError: members.fm.params.lr: must be positive (got -1)

Ensembles combine members, never other ensembles, so a graph has no cycles: a name in
``over`` that is an ensemble is refused as one.

``schema`` fixes what a feature column is (``number``, ``category`` or ``any``) where the
inference from the first rows would not (:mod:`streams.training.columns`):

>>> parse({"members": {"fm": {"kind": "fm"}}, "schema": {"zip": "category"}}).schema
{'zip': 'category'}
>>> parse({"members": {"fm": {"kind": "fm"}}, "schema": {"zip": "text"}})
Traceback (most recent call last):
...
streams.control.exceptions.SpecError: schema.zip: unknown column kind 'text'; known: number, category, any
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

from ensemble import build_combiner
from ensemble.vote import POLICIES
from learners import registry
from learners.base import Learner
from streams.contracts.fields import MAX_NAME
from streams.control.exceptions import SpecError
from streams.training.columns import KINDS as COLUMN_KINDS
from streams.training.columns import MAX_COLUMNS
from streams.training.model_set import ENSEMBLE_PREFIX

ENSEMBLE_KINDS = ("average", "weighted", "vote", "stacking")
VOTE_POLICIES = POLICIES
NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_MEMBERS = 16
QUOTAS = ("requests_per_s", "examples_per_s", "max_models")
MAX_SPEC_BYTES = 64 * 1024
# parameters that are counts or rates: a nonpositive value is refused by name
POSITIVE = {"lr", "alpha", "beta", "n_factors", "bits", "n_trees", "max_depth", "grace",
            "bins", "grace_period", "buckets", "dim", "batch_size", "init_std"}
NONNEGATIVE = {"l1", "l2", "l2_v", "seed", "epsilon", "switch_after", "replay_ratio"}


@dataclass(frozen=True)
class MemberSpec:
    kind: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class EnsembleSpec:
    kind: str
    over: tuple[str, ...] = ()
    threshold: float = 0.6  # vote only: share of votes that settles it
    policy: str = "weighted"  # vote only: what a conflict gives


@dataclass(frozen=True)
class ModelSpec:
    members: dict[str, MemberSpec]
    ensembles: dict[str, EnsembleSpec] = field(default_factory=dict)
    serve: str | None = None  # the output /recommend ranks by; None: the replica's setting
    quotas: dict = field(default_factory=dict)  # requests_per_s, examples_per_s, max_models
    schema: dict = field(default_factory=dict)  # feature column -> number, category or any

    def outputs(self) -> list[str]:
        return list(self.members) + [ENSEMBLE_PREFIX + e for e in self.ensembles]

    def to_doc(self) -> dict:
        doc: dict = {"members": {n: {"kind": m.kind, "params": dict(m.params)}
                                 for n, m in self.members.items()}}
        doc["ensembles"] = {n: {"kind": e.kind, "over": list(e.over),
                                **({"threshold": e.threshold, "policy": e.policy}
                                   if e.kind == "vote" else {})}
                            for n, e in self.ensembles.items()}
        if self.serve is not None:
            doc["serve"] = self.serve
        if self.quotas:
            doc["quotas"] = dict(self.quotas)
        if self.schema:
            doc["schema"] = dict(self.schema)
        return doc

    def encode(self) -> bytes:
        return json.dumps(self.to_doc(), sort_keys=True).encode()

    def build_member(self, name: str, crosses=(), device: str = "auto") -> Learner:
        m = self.members[name]
        return registry.build_kind(m.kind, m.params, crosses, device)

    def build_combiner(self, name: str):
        e = self.ensembles[name]
        return build_combiner(e.kind, e.threshold, e.policy)

    def build_ensembles(self) -> dict:
        return {n: self.build_combiner(n) for n in self.ensembles}


def default_spec(models: list[str], ensembles: list[str], vote_threshold: float = 0.6,
                 vote_policy: str = "weighted", serve: str | None = None) -> ModelSpec:
    """The spec the environment variables (``AIMASS_MODELS``, ``AIMASS_ENSEMBLES``) make: every
    member under its kind's name, every ensemble over all of them."""
    return parse({"members": {m: {"kind": m} for m in models},
                  "ensembles": {e: {"kind": e, "threshold": vote_threshold,
                                    "policy": vote_policy} if e == "vote" else {"kind": e}
                                for e in ensembles},
                  **({"serve": serve} if serve else {})})


def _object(value, path: str) -> dict:
    if not isinstance(value, dict):
        raise SpecError(path, f"must be an object (got {type(value).__name__})")
    return value


def _name(name, path: str) -> str:
    if not isinstance(name, str) or not NAME.match(name):
        raise SpecError(path, f"{name!r} is not a name: lower case letters, digits and _, "
                              "starting with a letter, at most 40")
    return name


def _param(value, path: str, key: str):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float):
        if not math.isfinite(value) or abs(value) > 1e9:
            raise SpecError(path, f"must be a finite number under 1e9 (got {value!r})")
        if key in POSITIVE and value <= 0:
            raise SpecError(path, f"must be positive (got {value!r})")
        if key in NONNEGATIVE and value < 0:
            raise SpecError(path, f"must not be negative (got {value!r})")
        return value
    if isinstance(value, list) and len(value) <= 8:
        return tuple(_param(v, f"{path}[{i}]", "") for i, v in enumerate(value))
    raise SpecError(path, f"must be a number, a string, a boolean or a short list "
                          f"(got {type(value).__name__})")


def _member(name: str, doc, path: str) -> MemberSpec:
    doc = _object(doc, path)
    extra = sorted(set(doc) - {"kind", "params"})
    if extra:
        raise SpecError(f"{path}.{extra[0]}", "unknown field; a member has kind and params")
    kind = doc.get("kind")
    if kind not in registry.KINDS:
        raise SpecError(f"{path}.kind", f"unknown learner kind {kind!r}; known: "
                                        f"{', '.join(sorted(registry.KINDS))}")
    params = _object(doc.get("params", {}), f"{path}.params")
    known = registry.KINDS[kind].parameters() - {"crosses", "device"}
    out = {}
    for key, value in params.items():
        if key not in known:
            raise SpecError(f"{path}.params.{key}", f"unknown parameter of {kind}; known: "
                                                    f"{', '.join(sorted(known))}")
        out[key] = _param(value, f"{path}.params.{key}", key)
    try:  # the learner's own checks of the values (a throwaway instance)
        registry.build_kind(kind, out, (), "cpu")
    except (TypeError, ValueError) as exc:
        raise SpecError(f"{path}.params", str(exc)) from None
    return MemberSpec(kind, out)


def _ensemble(doc, path: str, members: dict, ensembles: dict) -> EnsembleSpec:
    doc = _object(doc, path)
    extra = sorted(set(doc) - {"kind", "over", "threshold", "policy"})
    if extra:
        raise SpecError(f"{path}.{extra[0]}", "unknown field; an ensemble has kind, over, "
                                              "threshold and policy (vote)")
    kind = doc.get("kind")
    if kind not in ENSEMBLE_KINDS:
        raise SpecError(f"{path}.kind", f"unknown ensemble kind {kind!r}; known: "
                                        f"{', '.join(ENSEMBLE_KINDS)}")
    over = doc.get("over", list(members))
    if not isinstance(over, list) or not over:
        raise SpecError(f"{path}.over", "must list at least one member")
    for i, name in enumerate(over):
        if name in ensembles:
            raise SpecError(f"{path}.over[{i}]", f"{name!r} is an ensemble; ensembles combine "
                                                 "members (no ensemble over an ensemble)")
        if name not in members:
            raise SpecError(f"{path}.over[{i}]", f"{name!r} is not a member; members: "
                                                 f"{', '.join(members)}")
    if len(set(over)) != len(over):
        raise SpecError(f"{path}.over", "names a member twice")
    threshold = doc.get("threshold", 0.6)
    if isinstance(threshold, bool) or not isinstance(threshold, int | float) \
            or not 0.5 <= threshold <= 1.0:
        raise SpecError(f"{path}.threshold", f"must be a number from 0.5 to 1 "
                                             f"(got {threshold!r})")
    policy = doc.get("policy", "weighted")
    if policy not in VOTE_POLICIES:
        raise SpecError(f"{path}.policy", f"unknown vote policy {policy!r}; known: "
                                          f"{', '.join(VOTE_POLICIES)}")
    return EnsembleSpec(kind, tuple(over), float(threshold), policy)


def parse(doc) -> ModelSpec:
    """A validated :class:`ModelSpec` from a JSON/YAML document, or :class:`SpecError`."""
    doc = _object(doc, "")
    extra = sorted(set(doc) - {"members", "ensembles", "serve", "quotas", "schema"})
    if extra:
        raise SpecError(extra[0], "unknown field; a spec has members, ensembles, serve, "
                                  "quotas and schema")
    members_doc = _object(doc.get("members"), "members") if "members" in doc else None
    if not members_doc:
        raise SpecError("members", "at least one member is needed")
    if len(members_doc) > MAX_MEMBERS:
        raise SpecError("members", f"at most {MAX_MEMBERS} members")
    members = {_name(n, f"members.{n}"): _member(n, m, f"members.{n}")
               for n, m in members_doc.items()}
    ens_doc = _object(doc.get("ensembles") or {}, "ensembles")
    for n in ens_doc:
        _name(n, f"ensembles.{n}")
        if n in members:
            raise SpecError(f"ensembles.{n}", "is also a member's name")
    ensembles = {n: _ensemble(e, f"ensembles.{n}", members, ens_doc)
                 for n, e in ens_doc.items()}
    serve = doc.get("serve")
    quotas = _quotas(doc.get("quotas") or {}, len(members))
    spec = ModelSpec(members, ensembles, serve, quotas, _schema(doc.get("schema") or {}))
    if serve is not None and serve not in spec.outputs():
        raise SpecError("serve", f"{serve!r} is not an output; outputs: "
                                 f"{', '.join(spec.outputs())}")
    return spec


def _schema(doc) -> dict:
    doc = _object(doc, "schema")
    if len(doc) > MAX_COLUMNS:
        raise SpecError("schema", f"at most {MAX_COLUMNS} columns")
    for column, kind in doc.items():
        if not isinstance(column, str) or not 0 < len(column) <= MAX_NAME:
            raise SpecError("schema", f"a column name is text of 1 to {MAX_NAME} characters "
                                      f"(got {column!r})")
        if kind not in COLUMN_KINDS:
            raise SpecError(f"schema.{column}", f"unknown column kind {kind!r}; known: "
                                                f"{', '.join(COLUMN_KINDS)}")
    return dict(doc)


def _quotas(doc, members: int) -> dict:
    doc = _object(doc, "quotas")
    out = {}
    for key, value in doc.items():
        if key not in QUOTAS:
            raise SpecError(f"quotas.{key}", f"unknown quota; known: {', '.join(QUOTAS)}")
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value) or not 0 < value <= 1e9:
            raise SpecError(f"quotas.{key}", f"must be a positive number (got {value!r})")
        if key == "max_models" and (value != int(value) or value < members):
            raise SpecError("quotas.max_models", f"must be a whole number of at least the "
                                                 f"{members} members declared (got {value!r})")
        out[key] = int(value) if key == "max_models" else float(value)
    return out


def load(text: str | bytes) -> ModelSpec:
    """A spec from JSON or YAML text (a document over 64 KiB is refused)."""
    if len(text) > MAX_SPEC_BYTES:
        raise SpecError("", f"a spec is at most {MAX_SPEC_BYTES} bytes")
    import yaml

    try:
        doc = yaml.safe_load(text)  # JSON is YAML; safe_load builds plain data only
    except yaml.YAMLError as exc:
        raise SpecError("", f"not JSON or YAML: {exc}") from None
    return parse(doc)
