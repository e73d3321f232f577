"""Mini-batch training throughput of the deep models on the MovieLens click stream, per model
and device, against a bare torch training loop over the same tensors (the streaming overhead:
hashing, predict-before-learn, the pending queue). Also peak memory.

    python -m ops.bench.deep [--limit N] [--device auto|cpu|cuda] [--json PATH]
"""

from __future__ import annotations

import resource
import time

import numpy as np

from learners.deep.shared import SharedDeepCTR
from learners.metrics import log_loss, roc_auc

from .common import parser, print_table, write_json
from .movielens_stream import click_stream

MODELS = {"deepfm": ("deepfm",), "dcnv2": ("dcnv2",), "deepfm+dcnv2 (shared)": ("deepfm",
                                                                                 "dcnv2")}
STREAM_BATCH = 2000


def make(heads, device) -> SharedDeepCTR:
    return SharedDeepCTR(heads=heads, buckets=2**18, dim=16, hidden=(64, 32), batch_size=256,
                         switch_after=10**9, device=device, seed=7)


def streamed(heads, X, y, device) -> tuple[float, float, float]:
    m = make(heads, device)
    m.progressive_outputs(X[:512], y[:512])  # build, warm up kernels
    m = make(heads, device)
    preds = []
    _sync(device)
    t = time.perf_counter()
    for i in range(0, len(X), STREAM_BATCH):
        preds.append(m.progressive_outputs(X[i:i + STREAM_BATCH], y[i:i + STREAM_BATCH])
                     ["deep_joint"])
    m.flush()
    _sync(device)
    secs = time.perf_counter() - t
    p = np.concatenate(preds)
    return len(X) / secs, log_loss(y, p), roc_auc(y, p)


def bare(heads, X, y, device) -> float:
    """The same modules and optimisers, a plain loop over pre-hashed tensors: no hashing, no
    prediction pass, no queue, no loss balancing bookkeeping."""
    import torch
    import torch.nn.functional as F

    m = make(heads, device)
    idx = m.hasher.transform(X)
    m._build(idx.shape[1])
    t_idx = torch.from_numpy(idx).to(m._dev)
    t_y = torch.from_numpy(np.asarray(y, dtype=np.float32)).to(m._dev)
    bs = m.batch_size

    def epoch(n):
        for s in range(0, n, bs):
            heads_logits, _ = m._logits(t_idx[s:s + bs])
            loss = sum(F.binary_cross_entropy_with_logits(heads_logits[:, i], t_y[s:s + bs])
                       for i in range(heads_logits.shape[1]))
            m._opt_sparse.zero_grad()
            m._opt_dense.zero_grad()
            loss.backward()
            m._opt_sparse.step()
            m._opt_dense.step()

    epoch(min(2048, len(X)))  # warm up
    _sync(device)
    t = time.perf_counter()
    epoch(len(X))
    _sync(device)
    return len(X) / (time.perf_counter() - t)


def _sync(device):
    import torch

    if torch.cuda.is_available() and device != "cpu":
        torch.cuda.synchronize()


def main() -> None:
    p = parser(__doc__)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    import torch

    from learners.deep.shared import pick_device

    device = pick_device(args.device)
    exs = click_stream(args.cache_dir.parent, args.limit or None)
    X = [e.features for e in exs]
    y = np.array([e.label for e in exs], dtype=np.float64)
    rows = []
    for name, heads in MODELS.items():
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        rate, ll, auc = streamed(heads, X, y, device)
        base = bare(heads, X, y, device)
        row = {"name": name, "device": device, "examples": len(X),
               "examples_per_s": round(rate, 1), "bare_loop_examples_per_s": round(base, 1),
               "ratio_to_bare": round(rate / base, 3), "logloss": ll, "auc": auc,
               "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}
        if device == "cuda":
            row["gpu"] = torch.cuda.get_device_name()
            row["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20)
        rows.append(row)
    print_table(rows, ["name", "device", "examples", "examples_per_s",
                       "bare_loop_examples_per_s", "ratio_to_bare", "logloss", "auc",
                       "peak_rss_mib", "peak_gpu_mib"])
    write_json(args.json, rows, device=device)


if __name__ == "__main__":
    main()
