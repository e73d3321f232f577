"""`aimass train FILE --wait`: until the worker has learned every row sent, then what each model
made of them, as a table (and ``--json PATH``).

The figures are the tenant's, read from its latest checkpoint (the state the worker saved, the
one a restart would restore): progressive log loss and AUC (each example scored before it was
learned) and the same on the held-out share and on the test rows (``--test-share``), for
every member and ensemble; and each one's log loss along the stream (``curve``: examples
learned, mean log loss of the block ending there), which ``--plot PATH.png`` draws. For a
tenant that learns only this file, they are the file's figures.
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
    curves = ms.curves()
    for name, m in ms.metrics().items():
        models.append({"name": name,
                       "kind": "ensemble" if name.startswith(ENSEMBLE_PREFIX) else "member",
                       "examples": m["examples"], "logloss": _num(m["logloss"]),
                       "auc": _num(m["auc"]), "holdout_examples": m["holdout_examples"],
                       "holdout_logloss": _num(m["holdout_logloss"]),
                       "holdout_auc": _num(m["holdout_auc"]), "test_examples": m["test_examples"],
                       "test_logloss": _num(m["test_logloss"]), "test_auc": _num(m["test_auc"]),
                       "curve": [[n, round(v, 6)] for n, v in curves.get(name, [])]})
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


def plot(doc: dict, path: Path) -> None:
    """Each model's log loss along the stream, one line each (ensembles dashed), best first in
    the legend, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a file
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5), dpi=120)
    ranked = sorted(doc["models"], key=lambda m: (m["logloss"] is None, m["logloss"] or 0))
    for m in ranked:
        if not m["curve"]:
            continue
        xs, ys = zip(*m["curve"], strict=True)
        final = f" ({m['logloss']:.4f})" if m["logloss"] is not None else ""
        ax.plot(xs, ys, "--" if m["kind"] == "ensemble" else "-", linewidth=1.2,
                label=m["name"] + final)
    ax.set_xlabel("examples learned")
    ax.set_ylabel("log loss (per block of examples)")
    ax.set_title(f"tenant {doc['tenant']}: progressive log loss along the stream")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
