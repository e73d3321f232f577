"""A tenant's model set as signed state files, and back: its checkpoint (everything the
trainer needs to go on) and its snapshot (what serving replicas score with), the models encoded
once for both (:mod:`streams.state.statefile`, :mod:`learners.state`)."""

from __future__ import annotations

import time

from learners.state import Encoder
from streams.state.statefile import StateRejected, seal_tree, unseal
from streams.training.model_set import ModelSet


def _meta(ms: ModelSet, now: float) -> dict:
    return {"tenant": ms.tenant, "model_version": ms.version, "created_at": now}


def _dict_tree(enc: Encoder, done: dict, rest: dict) -> dict:
    """The tree of a dict whose ``done`` items are encoded already (by ``enc``'s parent)."""
    return {"$": "dict", "items": {**done, **{k: enc.enc(v) for k, v in rest.items()}}}


def seal_model_set(ms: ModelSet, key: bytes, now: float | None = None) -> tuple[bytes, bytes]:
    """(checkpoint, snapshot) of ``ms`` as signed state files; the models encoded once."""
    now = time.time() if now is None else now
    base = Encoder()
    models = base.enc(ms.models)
    ck_enc, snap_enc = base.fork(), base.fork()
    state = ms.to_state()
    del state["models"]
    checkpoint = seal_tree(key, "checkpoint", _meta(ms, now),
                           _dict_tree(ck_enc, {"models": models}, state), ck_enc.arrays)
    snapshot = seal_tree(key, "snapshot", _meta(ms, now),
                         _dict_tree(snap_enc, {"models": models}, _snapshot_rest(ms, now)),
                         snap_enc.arrays)
    return checkpoint, snapshot


def _snapshot_rest(ms: ModelSet, now: float) -> dict:
    return {"tenant": ms.tenant, "version": ms.version, "created_at": now,
            "ensembles": ms.ensembles, "members": ms.member_outputs(),
            "metrics": ms.metrics(), "serve": ms.serve,
            "over": {e: ms.ensemble_members(e, ms.member_outputs()) for e in ms.over}}


def snapshot_of(ms: ModelSet, key: bytes, now: float | None = None) -> bytes:
    """The signed snapshot of ``ms`` (what serving loads)."""
    return seal_model_set(ms, key, now)[1]


def load_checkpoint(data: bytes, key: bytes) -> ModelSet:
    """A model set from a signed checkpoint, or :class:`StateRejected`."""
    _, state = unseal(key, data, "checkpoint")
    try:
        return ModelSet.from_state(state)
    except (ValueError, TypeError) as exc:
        raise StateRejected(f"malformed checkpoint: {exc}") from None


