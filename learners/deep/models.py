"""The torch modules: one shared embedding table and the heads that read it.

``SharedEmbedding`` is a single object; every head holds a reference to it, so each head's
gradients reach the same table (the "model integration" of the design: shared parameters cut
redundancy and compute).
"""

from __future__ import annotations

import torch
from torch import nn


class SharedEmbedding(nn.Module):
    """Hashed field embeddings (``dim`` per field) and first-order weights, sparse gradients."""

    def __init__(self, buckets: int, dim: int):
        super().__init__()
        self.emb = nn.Embedding(buckets, dim, sparse=True)
        self.lin = nn.Embedding(buckets, 1, sparse=True)
        nn.init.normal_(self.emb.weight, std=0.01)
        nn.init.zeros_(self.lin.weight)

    def forward(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.emb(idx), self.lin(idx).squeeze(-1)  # (B, F, d), (B, F)


def mlp(width_in: int, hidden: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [nn.Linear(width_in, h), nn.ReLU()]
        width_in = h
    layers.append(nn.Linear(width_in, 1))
    return nn.Sequential(*layers)


class DeepFMHead(nn.Module):
    """DeepFM (Guo et al. 2017): first order + FM pairwise interactions + an MLP, one logit."""

    def __init__(self, shared: SharedEmbedding, n_fields: int, hidden=(64, 32)):
        super().__init__()
        self.shared = shared
        dim = shared.emb.embedding_dim
        self.deep = mlp(n_fields * dim, hidden)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        e, w = self.shared(idx)
        fm = 0.5 * (e.sum(1).pow(2) - e.pow(2).sum(1)).sum(1)
        return self.bias + w.sum(1) + fm + self.deep(e.flatten(1)).squeeze(-1)


class DCNv2Head(nn.Module):
    """DCN-v2 (Wang et al. 2021): explicit cross layers x_{l+1} = x0 * (W x_l + b) + x_l, then
    an MLP, one logit."""

    def __init__(self, shared: SharedEmbedding, n_fields: int, cross_layers: int = 2,
                 hidden=(64, 32)):
        super().__init__()
        self.shared = shared
        width = n_fields * shared.emb.embedding_dim
        self.cross = nn.ModuleList(nn.Linear(width, width) for _ in range(cross_layers))
        self.deep = mlp(width, hidden)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        e, w = self.shared(idx)
        x0 = x = e.flatten(1)
        for layer in self.cross:
            x = x0 * layer(x) + x
        return w.sum(1) + self.deep(x).squeeze(-1)


class Mixer(nn.Module):
    """The joint phase's output: a learned mixture of the heads' logits."""

    def __init__(self, n_heads: int):
        super().__init__()
        self.weight = nn.Parameter(torch.full((n_heads,), 1.0 / n_heads))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, logits: torch.Tensor) -> torch.Tensor:  # (B, H)
        return logits @ self.weight + self.bias
