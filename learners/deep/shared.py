"""Deep CTR heads over one shared embedding table, trained on the stream in mini-batches, in
two phases:

1. co-training: every head learns from every mini-batch, its loss divided by its own running
   average, so each head pulls on the shared table with the same strength (no head dominates);
2. joint: the heads' logits go through a learned mixer and the mixture is trained end to end
   (the heads keep a small auxiliary loss of their own).

The phase switches after ``switch_after`` examples, or earlier when the co-training loss has
plateaued (``plateau_window`` examples without ``plateau_tol`` relative improvement).

Predict-before-learn: a batch is scored with the parameters as they are, then its examples join
a pending queue that is trained on in mini-batches of ``batch_size``; a remainder waits for the
next batch (a small batch is not thrown away). Held-out examples are scored, never queued.
Runs on CUDA when present (``device="auto"``), with bfloat16 autocast there; on the CPU
otherwise.

>>> import random
>>> import numpy as np
>>> from learners.metrics import log_loss
>>> rng = random.Random(0)
>>> X = [{"u": rng.choice("abcdefgh"), "a": rng.choice("stuvwxyz")} for _ in range(8000)]
>>> likes = lambda x: (x["u"] in "abcd") == (x["a"] in "stuv")  # an interaction
>>> y = [int(rng.random() < (0.85 if likes(x) else 0.15)) for x in X]
>>> m = SharedDeepCTR(buckets=1024, dim=8, hidden=(16,), batch_size=64, switch_after=4000,
...                   device="cpu", seed=0)
>>> outs = [m.progressive_outputs(X[i:i + 500], y[i:i + 500]) for i in range(0, 8000, 500)]
>>> p = np.concatenate([o["deep_joint"] for o in outs])
>>> sorted(outs[0]), m.phase
(['dcnv2', 'deep_joint', 'deepfm'], 2)
>>> round(log_loss(y[6000:], p[6000:]), 2) < 0.5
True
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

import numpy as np

from ..base import Features, MiniBatchLearner, Phased
from ..state import Persistent
from .fields import FieldHasher

HEADS = ("deepfm", "dcnv2")
JOINT = "deep_joint"


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


class SharedDeepCTR(MiniBatchLearner, Phased, Persistent):
    """DeepFM and DCN-v2 heads sharing one hashed embedding table; outputs ``deepfm``,
    ``dcnv2`` and ``deep_joint`` (the mean of the heads in phase 1, the mixer in phase 2)."""

    name = "deep"
    outputs = (*HEADS, JOINT)

    def __init__(self, heads: tuple = HEADS, buckets: int = 2**18, dim: int = 16,
                 hidden: tuple = (64, 32),
                 cross_layers: int = 2, fields: Sequence[str] | None = None, lr: float = 1e-3,
                 sparse_lr: float = 1e-2, batch_size: int = 256, replay_ratio: float = 0.0,
                 buffer_size: int = 50_000, switch_after: int = 50_000,
                 plateau_window: int = 10_000, plateau_tol: float = 0.002, aux_weight: float = 0.1,
                 device: str = "auto", amp: bool = True, seed: int = 0):
        self.buckets, self.dim, self.hidden, self.cross_layers = buckets, dim, tuple(hidden), \
            cross_layers
        self.fields = tuple(fields) if fields else None
        self.lr, self.sparse_lr, self.batch_size = lr, sparse_lr, batch_size
        self.replay_ratio, self.buffer_size = replay_ratio, buffer_size
        self.switch_after, self.plateau_window, self.plateau_tol = (switch_after, plateau_window,
                                                                    plateau_tol)
        self.aux_weight, self.device, self.amp, self.seed = aux_weight, device, amp, seed
        unknown = set(heads) - set(HEADS)
        if unknown or not heads:
            raise ValueError(f"heads must be a non-empty subset of {HEADS}, got {heads}")
        self.heads = tuple(h for h in HEADS if h in heads)
        self.outputs = (*self.heads, JOINT)
        self.hasher = FieldHasher(buckets, self.fields)
        self.phase = 1
        self.examples_trained = 0
        self.steps = 0
        self._ema = np.ones(len(self.heads))
        self._plateau = (math.inf, 0)  # (best co-training loss, examples at best)
        self._pending_idx: list[np.ndarray] = []
        self._pending_y: list[np.ndarray] = []
        self._pending_w: list[np.ndarray] = []  # the pending examples' weights
        self._history: deque = deque(maxlen=buffer_size)
        self._net = None
        self._touched = np.zeros(buckets, dtype=np.bool_)

    # -- torch objects, built on first use ------------------------------------------------
    def _build(self, n_fields: int) -> None:
        import torch

        from .models import DCNv2Head, DeepFMHead, Mixer, SharedEmbedding

        torch.manual_seed(self.seed)
        self._dev = pick_device(self.device)
        shared = SharedEmbedding(self.buckets, self.dim)
        make = {"deepfm": lambda: DeepFMHead(shared, n_fields, self.hidden),
                "dcnv2": lambda: DCNv2Head(shared, n_fields, self.cross_layers, self.hidden)}
        heads = torch.nn.ModuleList([make[h]() for h in self.heads])
        self._net = torch.nn.ModuleDict({"shared": shared, "heads": heads,
                                         "mixer": Mixer(len(self.heads))}).to(self._dev)
        sparse = [shared.emb.weight, shared.lin.weight]
        dense = [p for n, p in self._net.named_parameters() if not n.startswith("shared.")]
        self._opt_sparse = torch.optim.SparseAdam(sparse, lr=self.sparse_lr)
        self._opt_dense = torch.optim.Adam(dense, lr=self.lr)

    @property
    def shared(self):
        return self._net["shared"]

    @property
    def head_modules(self):
        return self._net["heads"]

    def _tensor(self, idx: np.ndarray):
        import torch

        return torch.from_numpy(idx).to(self._dev, non_blocking=True)

    def _logits(self, t):
        import torch

        with torch.autocast(device_type="cuda", dtype=torch.bfloat16,
                            enabled=self.amp and self._dev == "cuda"):
            heads = torch.stack([h(t) for h in self.head_modules], dim=1).float()
            joint = self._net["mixer"](heads)
        return heads, joint

    # -- the protocol -----------------------------------------------------------------------
    def predict_outputs(self, X: Sequence[Features], member: str | None = None
                        ) -> dict[str, np.ndarray]:
        import torch

        idx = self.hasher.transform(X)
        if self._net is None:
            self._build(idx.shape[1])
        with torch.no_grad():
            heads, joint = self._logits(self._tensor(idx))
            ph = torch.sigmoid(heads).cpu().numpy().astype(np.float64)
            pj = (torch.sigmoid(joint).cpu().numpy().astype(np.float64) if self.phase == 2
                  else ph.mean(axis=1))
        out = {name: ph[:, i] for i, name in enumerate(self.heads)}
        out[JOINT] = pj
        return out

    def progressive_outputs(self, X: Sequence[Features], y: Sequence[int],
                            learn: Sequence[float] | None = None, member: str | None = None
                            ) -> dict[str, np.ndarray]:
        """Score the batch, then queue the examples to learn (with their weights) and train
        on full mini-batches."""
        out = self.predict_outputs(X)
        w = np.ones(len(X), np.float32) if learn is None else np.asarray(learn, np.float32)
        keep = w > 0
        if keep.any():
            idx = self.hasher.transform([x for x, k in zip(X, keep, strict=True) if k])
            self._pending_idx.append(idx)
            self._pending_y.append(np.asarray(y, dtype=np.float32)[keep])
            self._pending_w.append(w[keep])
            self._train_pending()
        return out

    def predict_proba_one(self, x: Features) -> float:
        return float(self.predict_outputs([x])[JOINT][0])

    def predict_proba_many(self, X: Sequence[Features]) -> np.ndarray:
        return self.predict_outputs(X)[JOINT]

    def learn_one(self, x: Features, y: int, w: float = 1.0) -> None:
        self.progressive_outputs([x], [y], [w])

    def progressive_many(self, X, y, learn=None) -> np.ndarray:
        return self.progressive_outputs(X, y, learn)[JOINT]

    def flush(self) -> None:
        """Train on whatever is pending, even if less than a mini-batch."""
        self._train_pending(force=True)

    # -- training ---------------------------------------------------------------------------
    def _train_pending(self, force: bool = False) -> None:
        if not self._pending_idx:
            return
        idx = np.concatenate(self._pending_idx)
        y = np.concatenate(self._pending_y)
        w = np.concatenate(self._pending_w)
        n_full = len(y) // self.batch_size * self.batch_size
        if force:
            n_full = len(y)
        b = self.batch_size
        for s in range(0, n_full, b):
            self._step(idx[s:s + b], y[s:s + b], w[s:s + b])
        rest = n_full < len(y)
        self._pending_idx = [idx[n_full:]] if rest else []
        self._pending_y = [y[n_full:]] if rest else []
        self._pending_w = [w[n_full:]] if rest else []

    def _step(self, idx: np.ndarray, y: np.ndarray, w: np.ndarray) -> None:
        import torch
        import torch.nn.functional as F

        if self.replay_ratio > 0 and len(self._history) >= self.batch_size:
            k = int(len(y) * self.replay_ratio)
            rng = np.random.default_rng(self.seed + self.steps)
            pick = rng.integers(0, len(self._history), size=k)
            idx = np.concatenate([idx, np.stack([self._history[i][0] for i in pick])])
            y = np.concatenate([y, np.array([self._history[i][1] for i in pick], np.float32)])
            w = np.concatenate([w, np.array([self._history[i][2] for i in pick], np.float32)])
        if self.replay_ratio > 0:  # recent examples, mixed into later mini-batches
            self._history.extend(zip(idx[: self.batch_size], y[: self.batch_size],
                                     w[: self.batch_size], strict=False))
        self._touched[idx.ravel()] = True
        t, target = self._tensor(idx), torch.from_numpy(y).to(self._dev)
        weight = torch.from_numpy(np.ascontiguousarray(w, np.float32)).to(self._dev)
        heads, joint = self._logits(t)
        per_head = torch.stack([F.binary_cross_entropy_with_logits(heads[:, i], target, weight)
                                for i in range(len(self.heads))])
        losses = per_head.detach().cpu().numpy()
        self._ema = 0.98 * self._ema + 0.02 * losses
        if self.phase == 1:
            w = (1.0 / self._ema) / np.mean(1.0 / self._ema)  # balanced: equal pull per head
            loss = (per_head * torch.as_tensor(w, dtype=per_head.dtype,
                                               device=per_head.device)).sum()
        else:
            loss = (F.binary_cross_entropy_with_logits(joint, target, weight)
                    + self.aux_weight * per_head.sum())
        self._opt_sparse.zero_grad()
        self._opt_dense.zero_grad()
        loss.backward()
        self._opt_sparse.step()
        self._opt_dense.step()
        self.steps += 1
        self.examples_trained += len(y)
        if self.phase == 1:
            self._maybe_switch(float(losses.mean()))

    def _maybe_switch(self, loss: float) -> None:
        best, at = self._plateau
        if loss < best * (1 - self.plateau_tol):
            self._plateau = (loss, self.examples_trained)
        plateaued = self.examples_trained - self._plateau[1] >= self.plateau_window
        if self.examples_trained >= self.switch_after or plateaued:
            self.phase = 2

    # -- state --------------------------------------------------------------------------------
    def to_state(self) -> dict:
        """Plain numbers and numpy arrays (:mod:`learners.state`; no ``torch.save``): dense
        parts whole, of the embedding tables (and their optimiser moments) only the rows the
        stream touched."""
        import torch

        state = {"params": {k: getattr(self, k) for k in self._init_params()},
                 "phase": self.phase, "examples_trained": self.examples_trained,
                 "steps": self.steps, "ema": self._ema, "plateau": self._plateau,
                 "fields": self.hasher.fields, "pending_idx": self._pending_idx,
                 "pending_y": self._pending_y, "pending_w": self._pending_w,
                 "history": list(self._history), "net": None}
        if self._net is not None:
            rows = np.flatnonzero(self._touched)
            sel = torch.from_numpy(rows).to(self._dev)
            dense = {k: _np(v) for k, v in self._net.state_dict().items()
                     if not k.startswith("shared.")}
            sparse, moments = {}, {}
            for name, p in (("emb", self.shared.emb.weight), ("lin", self.shared.lin.weight)):
                sparse[name] = _np(p.detach()[sel])
                st = self._opt_sparse.state.get(p, {})
                moments[name] = {k: (_np(v[sel]) if torch.is_tensor(v) and v.dim() else _np(v))
                                 for k, v in st.items()}
            state["net"] = {"rows": rows, "dense": dense, "sparse": sparse, "moments": moments,
                            "opt_dense": _tree_np(self._opt_dense.state_dict()),
                            "n_fields": len(self.hasher.fields)}
        return state

    @classmethod
    def from_state(cls, state: dict) -> SharedDeepCTR:
        import torch

        m = cls(**state["params"])
        m.phase, m.examples_trained, m.steps = state["phase"], state["examples_trained"], \
            state["steps"]
        m._ema, m._plateau = np.asarray(state["ema"], dtype=np.float64), tuple(state["plateau"])
        m.hasher.fields = tuple(state["fields"]) if state["fields"] else None
        m._pending_idx, m._pending_y = list(state["pending_idx"]), list(state["pending_y"])
        # (a state saved before weights has none: its examples weigh 1)
        m._pending_w = list(state.get("pending_w", [np.ones(len(a), np.float32)
                                                    for a in m._pending_y]))
        m._history.extend(tuple(h) if len(h) == 3 else (*h, 1.0) for h in state["history"])
        net = state["net"]
        if net is not None:
            m._build(int(net["n_fields"]))
            own = m._net.state_dict()
            m._net.load_state_dict({**own, **{k: torch.from_numpy(np.array(v))
                                              for k, v in net["dense"].items()}})
            rows = np.asarray(net["rows"], dtype=np.int64)
            sel = torch.from_numpy(rows).to(m._dev)
            m._touched[rows] = True
            with torch.no_grad():
                for name, p in (("emb", m.shared.emb.weight), ("lin", m.shared.lin.weight)):
                    p[sel] = torch.from_numpy(np.array(net["sparse"][name])).to(m._dev)
                    saved = net["moments"][name]
                    if saved:
                        st = m._opt_sparse.state[p]
                        for k, v in saved.items():
                            if not isinstance(v, np.ndarray):
                                st[k] = v  # a plain step count
                                continue
                            t = torch.from_numpy(np.array(v))
                            if t.dim():
                                full = torch.zeros_like(p)
                                full[sel] = t.to(m._dev)
                                st[k] = full
                            else:
                                st[k] = t.to(m._dev)
            m._opt_dense.load_state_dict(_tree_torch(net["opt_dense"]))
        return m


def _np(v):
    """A tensor (or number) as a numpy array (or the number)."""
    import torch

    return v.detach().float().cpu().numpy() if torch.is_tensor(v) and v.is_floating_point() \
        else v.detach().cpu().numpy() if torch.is_tensor(v) else v


def _tree_np(v):
    if isinstance(v, dict):
        return {k: _tree_np(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return type(v)(_tree_np(x) for x in v)
    return _np(v)


def _tree_torch(v):
    import torch

    if isinstance(v, dict):
        return {k: _tree_torch(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return type(v)(_tree_torch(x) for x in v)
    if isinstance(v, np.ndarray):
        return torch.from_numpy(np.array(v))
    return v
