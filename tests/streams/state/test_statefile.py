"""Model state is data: a forged or unsigned message executes nothing and is refused with its
reason; the exactly-once horizon refuses, never relearns, what it no longer remembers."""

from __future__ import annotations

import os
import pickle
import zlib

import numpy as np
import pytest

from learners.checks import X, Y
from learners.dedup import LATE, LearnedIds, id_hash
from learners.registry import build
from learners.state import StateError, decode, encode
from streams.contracts.events import TrainingExample
from streams.serving.snapshots import load_snapshot
from streams.state.model_sets import load_checkpoint, seal_model_set
from streams.state.statefile import StateRejected, seal, seal_tree, unseal, verify
from streams.training.model_set import ModelSet
from tests.helpers import KEY


class WritesAMarker:
    """What an attacker would pickle: unpickling it calls ``open(path, 'w')``."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def trained_set(n: int = 300) -> ModelSet:
    ms = ModelSet("acme", build(["ftrl", "river_logreg"]))
    ms.process([TrainingExample(f"e{i}", 1000.0 + i, "acme", X[i], Y[i]) for i in range(n)])
    return ms


@pytest.mark.parametrize("load", [load_snapshot, load_checkpoint])
def test_a_pickle_payload_is_refused_and_runs_nothing(tmp_path, load):
    marker = tmp_path / "pwned"
    payloads = [
        pickle.dumps(WritesAMarker(str(marker))),  # raw pickle
        zlib.compress(pickle.dumps(WritesAMarker(str(marker))), 1),  # the old state format
    ]
    for payload in payloads:
        with pytest.raises(StateRejected):
            load(payload, KEY)
    assert not marker.exists()


def test_the_old_format_says_how_to_start_fresh():
    with pytest.raises(StateRejected) as err:
        load_checkpoint(zlib.compress(pickle.dumps({"tenant": "acme"}), 1), KEY)
    assert err.value.code == "legacy" and "starts fresh" in err.value.reason


def test_a_state_signed_with_another_key_is_refused():
    _, snap = seal_model_set(trained_set(), b"someone else's key")
    with pytest.raises(StateRejected) as err:
        load_snapshot(snap, KEY)
    assert err.value.code == "signature"


def test_any_flipped_byte_is_refused():
    _, snap = seal_model_set(trained_set(50), KEY)
    for i in (0, 9, 20, len(snap) // 2, len(snap) - 40, len(snap) - 1):
        bad = bytearray(snap)
        bad[i] ^= 0x01
        with pytest.raises(StateRejected):
            load_snapshot(bytes(bad), KEY)


def test_a_signed_state_naming_a_function_is_refused_and_runs_nothing(tmp_path):
    """Even with the key, a state can only describe allowed classes: no name is imported,
    called or evaluated."""
    marker = tmp_path / "pwned"
    for tree in ({"$": "obj", "cls": "os:system", "attrs": {}},
                 {"$": "partial", "func": {"$": "class", "cls": "builtins:open"},
                  "args": {"$": "tuple", "v": [str(marker), "w"]}, "kw": {"$": "dict",
                                                                         "items": {}}},
                 {"$": "reduce", "cls": "builtins:eval", "args": ["1"]},
                 {"$": "class", "cls": "subprocess:Popen"}):
        blob = seal_tree(KEY, "snapshot", {}, tree, [])
        with pytest.raises(StateRejected):
            load_snapshot(blob, KEY)
    assert not marker.exists()
    with pytest.raises(StateError):
        decode({"$": "array", "i": 0}, [])


def test_object_arrays_are_never_written_or_read():
    with pytest.raises(StateError):
        encode(np.array([object()], dtype=object))
    blob = seal(KEY, "snapshot", {}, np.arange(3))
    assert unseal(KEY, blob, "snapshot")[1].tolist() == [0, 1, 2]
    forged = blob.replace(b'"<i8"', b'"|O8"')
    with pytest.raises(StateRejected):  # the MAC, first
        unseal(KEY, forged, "snapshot")


def test_checkpoint_and_snapshot_round_trip_and_share_one_encoding():
    ms = trained_set()
    ck, snap = seal_model_set(ms, KEY, now=123.0)
    assert verify(KEY, ck, "checkpoint")["tenant"] == "acme"
    with pytest.raises(StateRejected):  # a snapshot is not a checkpoint
        load_checkpoint(snap, KEY)
    again = load_checkpoint(ck, KEY)
    assert again.examples_learned == ms.examples_learned and len(again.learned) == 300
    s = load_snapshot(snap, KEY)
    assert s.version == ms.version and s.created_at == 123.0
    np.testing.assert_allclose(s.score(X[300:340], "ftrl"),
                               ms.models["ftrl"].predict_proba_many(X[300:340]))
    np.testing.assert_allclose(s.score(X[300:340], "river_logreg"),
                               ms.models["river_logreg"].predict_proba_many(X[300:340]))


def test_the_horizon_refuses_what_it_forgot_and_never_learns_twice():
    ms = ModelSet("t", build(["ftrl"]), learned=LearnedIds(horizon=1e9, capacity=100))
    exs = [TrainingExample(f"e{i}", float(i), "t", X[i], Y[i]) for i in range(300)]
    for i in range(0, 300, 50):
        ms.process(exs[i:i + 50])
    assert ms.examples_learned == 300 and len(ms.learned) == 100
    assert ms.learned.floor == 199.0  # e0 .. e199 forgotten
    again = ms.process(exs[150:260])  # a replay across the horizon
    assert [e.id for e in again.late] == [f"e{i}" for i in range(150, 200)]
    assert again.duplicates == 60 and not again.examples
    assert ms.examples_learned == 300  # nothing learned twice
    status = ms.learned.classify([id_hash("e5"), id_hash("new")], [5.0, 5.0])
    assert status.tolist() == [LATE, LATE]  # too old to tell: refused, not learned


def test_the_horizon_in_time_since_learning():
    """Ids are forgotten once Kafka no longer holds what could bring them back: no floor."""
    ids = LearnedIds(horizon=60.0, capacity=10_000)
    ids.add([id_hash(f"a{i}") for i in range(10)], [float(i) for i in range(10)], now=0.0)
    ids.add([id_hash(f"b{i}") for i in range(5)], [20.0] * 5, now=30.0)
    ids.add([id_hash("c")], [5.0], now=70.0)  # the a's are 70 s old
    assert len(ids) == 6 and ids.floor == float("-inf")
    round_trip = LearnedIds.from_state(ids.to_state())
    assert id_hash("b3") in round_trip and id_hash("a2") not in round_trip
    assert round_trip.classify([id_hash("a2"), id_hash("b3")], [2.0, 20.0]).tolist() == [0, 1]


def test_no_pickle_on_any_path_that_reads_state():
    """The rule, checked on the source: no pickle, no torch.load, no allow_pickle anywhere
    in the packages."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    banned = ("import pickle", "pickle.loads", "torch.load(", "allow_pickle=True", "joblib",
              "dill", "cloudpickle", "marshal.loads")
    found = []
    for pkg in ("streams", "learners", "ensemble", "sinks", "ops"):
        for dirpath, _, files in os.walk(os.path.join(root, pkg)):
            for f in files:
                if f.endswith(".py"):
                    text = open(os.path.join(dirpath, f)).read()
                    found += [(f, b) for b in banned if b in text]
    assert not found
