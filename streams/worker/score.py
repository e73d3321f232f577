"""The score stage: every ad request that came through Kafka (not answered by a serving replica
already, ``served``) is ranked the moment it arrives and published to the recommendations
topic, keyed by request id. It ranks exactly as ``/recommend`` does
(:class:`streams.serving.ranking.Ranker`): the snapshots the trainer published, followed from
the ``model-updates`` topic as a replica follows them, the same default output and fallback,
the same record. So a worker that trains no tenant (another worker of the group does) scores
with that tenant's current model all the same."""

from __future__ import annotations

import time

from streams.contracts.events import AdRequest, encode
from streams.serving.ranking import Ranker
from streams.serving.snapshots import ModelStore
from streams.worker.dispatch import Dispatcher
from streams.worker.runtime import Runtime


class ScoreStage:
    def __init__(self, runtime: Runtime, store: ModelStore):
        self.rt = runtime
        self.ranker = Ranker(store, runtime.settings.serving_model, served_by="worker")

    async def handle(self, reqs: list[AdRequest]) -> None:
        """Dispatch by priority and deadline, drop the expired, score, publish each result."""
        started = time.perf_counter()
        fresh = [r for r in reqs if not r.served]
        if len(fresh) < len(reqs):
            for r in reqs:
                if r.served:
                    self.rt.metrics.already_served.labels(r.tenant).inc()
        reqs, expired = Dispatcher.order(fresh, time.time())
        if expired:
            self.rt.metrics.expired.inc(len(expired))
        if reqs:
            recs = self.ranker.rank_many(reqs)
            # not waited for here: the join confirms them before it acknowledges the requests
            self.rt.send("recommendations", [(r.request_id.encode(), encode(r)) for r in recs])
        self.rt.observe("score", len(reqs), started)
