"""`aimass train FILE --wait`: until the worker has learned every row sent, then what each model
made of them, as a table (and ``--json PATH``).

The figures are the tenant's, read from its latest checkpoint (the state the worker saved, the
one a restart would restore): progressive log loss and AUC (each example scored before it was
learned) and the same on the held-out share and on the test rows (``--test-share``), for
every member and ensemble. For a tenant that
learns only this file, they are the file's figures.
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from learners.dedup import id_hash
from streams.settings import Settings
from streams.training.model_set import ENSEMBLE_PREFIX, ModelSet


def wait_learned(settings: Settings, tenant: str, ids: list[str], timeout: float,
                 poll: float = 2.0, progress=print) -> ModelSet:
    """The tenant's checkpointed model set once it holds every id of ``ids`` (learned or
    held out); TimeoutError past ``timeout`` seconds, saying how many it holds."""
    from streams.state.checkpoints import CheckpointStore
    from streams.state.model_sets import load_checkpoint
    from streams.state.statefile import load_key

    key = load_key(settings)
    store = CheckpointStore(settings, key)
    hashes = [id_hash(i) for i in ids]
    deadline = time.monotonic() + timeout
    done, last = 0, -1
    while True:
        states, _ = store.load()
        if tenant in states:
            ms = load_checkpoint(states[tenant], key)
            done = sum(h in ms.learned for h in hashes)
            if done == len(hashes):
                return ms
            if done != last:
                progress(f"learned {done:,} of {len(hashes):,}")
                last = done
        if time.monotonic() > deadline:
            raise TimeoutError(f"the worker learned {done:,} of the {len(hashes):,} rows in "
                               f"{timeout:.0f} s: is `aimass worker` running?")
        time.sleep(poll)


def report(ms: ModelSet, tenant: str, rows_sent: int) -> dict:
    models = []
    for name, m in ms.metrics().items():
        models.append({"name": name,
                       "kind": "ensemble" if name.startswith(ENSEMBLE_PREFIX) else "member",
                       "examples": m["examples"], "logloss": _num(m["logloss"]),
                       "auc": _num(m["auc"]), "holdout_examples": m["holdout_examples"],
                       "holdout_logloss": _num(m["holdout_logloss"]),
                       "holdout_auc": _num(m["holdout_auc"]), "test_examples": m["test_examples"],
                       "test_logloss": _num(m["test_logloss"]), "test_auc": _num(m["test_auc"])})
    return {"tenant": tenant, "rows_sent": rows_sent, "examples_learned": ms.examples_learned,
            "models": models}


def _num(v):
    return None if v is None or v != v else round(float(v), 6)  # NaN: not enough examples


def render(doc: dict) -> str:
    out = [f"tenant {doc['tenant']}: {doc['rows_sent']:,} rows sent, "
           f"{doc['examples_learned']:,} learned (the rest held out or test rows)",
           f"{'model':22} {'kind':8} {'examples':>9} {'logloss':>8} {'auc':>7} "
           f"{'holdout ll':>10} {'holdout auc':>11} {'test ll':>8} {'test auc':>8}"]

    def f(v, w):
        return f"{v:>{w}.4f}" if v is not None else f"{'-':>{w}}"
    for m in sorted(doc["models"], key=lambda m: (m["logloss"] is None, m["logloss"] or 0)):
        out.append(f"{m['name']:22} {m['kind']:8} {m['examples']:>9,} {f(m['logloss'], 8)} "
                   f"{f(m['auc'], 7)} {f(m['holdout_logloss'], 10)} {f(m['holdout_auc'], 11)} "
                   f"{f(m['test_logloss'], 8)} {f(m['test_auc'], 8)}")
    return "\n".join(out)


def write_json(doc: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
