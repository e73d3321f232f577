"""Running standardisation of numeric features, learned on the stream like the models.

Each numeric feature keeps its count, mean and sum of squared deviations (Welford's update,
Welford 1962); a value becomes its z-score by the statistics so far, clipped to ``±clip``
standard deviations, so one extreme value cannot swamp a model. Predictions use the statistics
as they are; :meth:`RunningScaler.learn` updates them after the example is learned (predict
before learn, as everywhere).

>>> s = RunningScaler()
>>> for v in (1.0, 2.0, 3.0):
...     s.learn({"x": v, "tag=a": 1.0}, numeric={"x"})
>>> z = s.transform({"x": 3.0, "tag=a": 1.0}, numeric={"x"})
>>> round(z["x"], 4), z["tag=a"]  # (3 - 2) / sd([1, 2, 3])
(1.2247, 1.0)
>>> s.transform({"x": 1e300}, numeric={"x"})["x"]  # clipped
5.0
"""

from __future__ import annotations

import math

from .state import persistent


@persistent
class RunningScaler:
    def __init__(self, clip: float = 5.0, eps: float = 1e-9):
        self.clip, self.eps = clip, eps
        self.stats: dict[str, list[float]] = {}  # name -> [n, mean, m2]

    def __len__(self) -> int:
        """How many numeric features it has statistics of."""
        return len(self.stats)

    def transform(self, x: dict, numeric) -> dict:
        out = dict(x)
        for k in numeric:
            v = x.get(k)
            if v is None:
                continue
            st = self.stats.get(k)
            if st is None or st[0] < 2:
                z = 0.0  # nothing known of its scale yet
            else:
                sd = math.sqrt(st[2] / st[0]) + self.eps
                z = (v - st[1]) / sd
            out[k] = max(-self.clip, min(self.clip, z)) if math.isfinite(z) else 0.0
        return out

    def learn(self, x: dict, numeric) -> None:
        for k in numeric:
            v = x.get(k)
            if v is None or not math.isfinite(v):
                continue
            st = self.stats.setdefault(k, [0.0, 0.0, 0.0])
            st[0] += 1
            d = v - st[1]
            st[1] += d / st[0]
            st[2] += d * (v - st[1])
