"""The score stage: every ad request, the moment it arrives, is ranked by the tenant's current
model and published as a recommendation keyed by request id. Requests with a few candidates are
scored as one vectorised call per tenant and batch; a request with many is scored on its own,
its user and context features built once (:meth:`learners.base.Learner.predict_request`).
Requests a serving replica answered already (``served``) are only joined, not scored again."""

from __future__ import annotations

import asyncio
import time

import numpy as np

from streams.contracts.events import AdRequest, Recommendation, encode
from streams.contracts.features import pair_features, request_features
from streams.worker.dispatch import Dispatcher
from streams.worker.runtime import Runtime
from streams.worker.train import TrainStage


def rank(req: AdRequest, scores) -> list[dict]:
    ranked = sorted(zip((c.ad_id for c in req.candidates), scores, strict=True),
                    key=lambda t: -t[1])
    return [{"ad_id": ad, "score": round(float(s), 6)} for ad, s in ranked]


MANY = 8  # candidates from which a request is scored on its own


class ScoreStage:
    def __init__(self, runtime: Runtime, train: TrainStage):
        self.rt = runtime
        self.train = train
        self.dispatcher = Dispatcher()

    def score(self, reqs: list[AdRequest]) -> list[Recommendation]:
        trainer = self.train.trainer
        out = []
        by_tenant: dict[str, list[AdRequest]] = {}
        for r in reqs:
            by_tenant.setdefault(r.tenant, []).append(r)
        for tenant, rs in by_tenant.items():
            ms = trainer.sets.get(tenant)
            t0 = time.perf_counter()
            if ms is None or not ms.examples_learned:
                n = sum(len(r.candidates) for r in rs)
                scores, version, fallback = [0.5] * n, f"{tenant}:none", True
            else:
                name = next(iter(ms.models))
                scores = self._scores(ms.models[name], rs)
                version, fallback = f"{tenant}:{name}:v{ms.version}", False
            took = (time.perf_counter() - t0) * 1000 / max(len(rs), 1)
            i = 0
            for r in rs:
                n = len(r.candidates)
                out.append(Recommendation(id=f"{r.id}/rec", event_time=time.time(),
                                          tenant=tenant, request_id=r.id, model_version=version,
                                          ranked=rank(r, scores[i:i + n]), fallback=fallback,
                                          took_ms=round(took, 3)))
                i += n
        return out

    @staticmethod
    def _scores(model, rs: list[AdRequest]) -> list[float]:
        few = [r for r in rs if len(r.candidates) < MANY]
        X = [pair_features(r.user, r.context, c) for r in few for c in r.candidates]
        batch = iter(np.asarray(model.predict_proba_many(X)).tolist() if X else ())
        out: list[float] = []
        for r in rs:
            if len(r.candidates) < MANY:
                out += [next(batch) for _ in r.candidates]
            else:
                out += np.asarray(model.predict_request(*request_features(
                    r.user, r.context, r.candidates))).tolist()
        return out

    async def handle(self, reqs: list[AdRequest]) -> None:
        """Dispatch by priority and deadline, drop the expired, score, publish each result."""
        started = time.perf_counter()
        for r in reqs:
            if r.served:
                self.rt.metrics.already_served.labels(r.tenant).inc()
            else:
                self.dispatcher.submit(r)
        reqs, expired = self.dispatcher.drain(time.time())
        if expired:
            self.rt.metrics.expired.inc(len(expired))
        if reqs:
            await asyncio.to_thread(lambda: self.train.trainer)  # restore before first use
            recs = self.score(reqs)
            # not waited for here: the join confirms them before it acknowledges the requests
            self.rt.send("recommendations", [(r.request_id.encode(), encode(r)) for r in recs])
        self.rt.observe("score", len(reqs), started)
