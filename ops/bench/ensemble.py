"""Every member, every ensemble strategy and Vowpal Wabbit on the full MovieLens-100k click
stream, in one run: progressive (train-side) and holdout log loss and AUC. A deterministic 10%
of example ids is held out: scored by everyone, learned by no one (VW included).

    python -m ops.bench.ensemble [--limit N] [--members ftrl,fm,adpredictor,river_logreg,deep]
                                 [--holdout 0.1] [--json PATH]
"""

from __future__ import annotations

import time

import numpy as np

from ensemble import build_combiner
from learners import registry
from learners.hashing import FeatureHasher
from learners.metrics import log_loss, roc_auc
from streams.contracts.features import DEFAULT_CROSSES
from streams.training.model_set import ENSEMBLE_PREFIX, ModelSet, is_holdout

from .common import parser, print_table, write_json
from .movielens_stream import click_stream
from .vw import vw_lines

STRATEGIES = ("average", "weighted", "vote", "stacking")


def run_vw_holdout(X, y, hold, ftrl: bool) -> np.ndarray:
    from vowpalwabbit import pyvw

    vw = pyvw.Workspace("--loss_function logistic --link logistic -b 22 --quiet"
                        + (" --ftrl" if ftrl else ""))
    out = np.empty(len(X))
    for i, line in enumerate(vw_lines(X, y, FeatureHasher(22, DEFAULT_CROSSES))):
        ex = vw.example(line)
        out[i] = vw.predict(ex)
        if not hold[i]:
            vw.learn(ex)
        vw.finish_example(ex)
    vw.finish()
    return out


def scores(name: str, kind: str, p, y, hold) -> dict:
    tr, ho = ~hold, hold
    return {"name": name, "kind": kind, "logloss": log_loss(y[tr], p[tr]),
            "auc": roc_auc(y[tr], p[tr]), "holdout_logloss": log_loss(y[ho], p[ho]),
            "holdout_auc": roc_auc(y[ho], p[ho])}


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--members", default="ftrl,fm,adpredictor,river_logreg,deep")
    p.add_argument("--holdout", type=float, default=0.1)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    exs = click_stream(args.cache_dir.parent, args.limit or None)
    X = [e.features for e in exs]
    y = np.array([e.label for e in exs], dtype=np.float64)
    hold = np.array([is_holdout(e.id, args.holdout) for e in exs])
    print(f"{len(exs)} examples, {hold.sum()} held out")

    ms = ModelSet("movielens", registry.build(args.members.split(","), DEFAULT_CROSSES,
                                              args.device), args.holdout,
                  ensembles={s: build_combiner(s) for s in STRATEGIES})
    preds: dict[str, list] = {}
    t = time.perf_counter()
    for i in range(0, len(exs), 2000):
        res = ms.process(exs[i:i + 2000])
        for name, pr in res.predictions.items():
            preds.setdefault(name, []).append(pr)
    secs = time.perf_counter() - t
    rows = []
    for name, parts in preds.items():
        kind = "ensemble" if name.startswith(ENSEMBLE_PREFIX) else "member"
        rows.append(scores(name, kind, np.concatenate(parts), y, hold))
    for ftrl in (False, True):
        rows.append(scores("vw --ftrl" if ftrl else "vw", "vw",
                           run_vw_holdout(X, y, hold, ftrl), y, hold))
    print_table(rows, ["name", "kind", "logloss", "auc", "holdout_logloss", "holdout_auc"])
    best = {k: min((r for r in rows if r["kind"] == k), key=lambda r: r["holdout_logloss"])
            for k in ("member", "ensemble", "vw")}
    print(f"\nbest member {best['member']['name']}, best ensemble {best['ensemble']['name']}, "
          f"vw best {best['vw']['name']}; all members + ensembles took {secs:.1f}s")
    write_json(args.json, rows, examples=len(exs), holdout=int(hold.sum()),
               seconds_members_and_ensembles=round(secs, 2))


if __name__ == "__main__":
    main()
