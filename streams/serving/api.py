"""The recommendation API (aiohttp, orjson bodies).

A replica holds no training state: it follows the ``model-updates`` topic and swaps each new
snapshot in atomically (:mod:`streams.state.model_updates`). Candidates of a request are scored as
one vectorised batch per member. Requests are logged to the ad-requests topic after the answer
is ready (librdkafka queues them; never on the latency path), so their feedback can be joined.
With no model for a tenant yet, the answer comes from the declared fallback (popularity from
ClickHouse when it can be read, else the given order) and says so.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
import uuid

import numpy as np
import orjson
from aiohttp import ClientPayloadError, web
from confluent_kafka import KafkaException
from prometheus_client import CollectorRegistry, generate_latest

from streams.contracts.events import (
    AdRequest,
    InvalidEvent,
    Recommendation,
    TrainingExample,
    encode,
    parse_object,
)
from streams.producer import DeliveryFailed
from streams.serving.access import PROTECTED, AccessControl, AccessDenied
from streams.serving.cluster import ClusterView
from streams.serving.graphs import Graphs
from streams.serving.http import PRINCIPAL, _body, _error, _ok, _ok_encoded, _read
from streams.serving.metrics import ServingMetrics, build_serving_metrics
from streams.serving.openapi import spec
from streams.serving.overload import BUSY, MAX_IN_FLIGHT, MAX_LAG, UNLIMITED, LoopLag
from streams.serving.quotas import QuotaExceeded, Quotas
from streams.serving.ranking import Ranker
from streams.serving.snapshots import ModelStore
from streams.serving.tasks_api import TaskRoutes
from streams.training.model_set import ENSEMBLE_PREFIX

log = logging.getLogger(__name__)
SERVING = web.AppKey("serving", object)
METRICS = web.AppKey("metrics", ServingMetrics)


def _check_tenant(request: web.Request, d: dict, action: str) -> str:
    """The body's tenant, which the caller's key must be allowed ``action`` on: checked
    before anything else of the body is."""
    tenant = d.get("tenant")
    if not isinstance(tenant, str) or not tenant:
        raise InvalidEvent("tenant", "is required")
    request[PRINCIPAL].check(action, tenant)
    return tenant


async def _tenant_body(request: web.Request, action: str) -> tuple[dict, str]:
    """The body and its tenant, which the caller's key must be allowed ``action`` on."""
    d = await _body(request)
    return d, _check_tenant(request, d, action)


def _finite_ranked(req: AdRequest, rec: Recommendation) -> None:
    """A model that gives no finite score for a candidate is answered 400, naming it."""
    bad = {x["ad_id"] for x in rec.ranked if not math.isfinite(x["score"])}
    if bad:
        i = next(i for i, c in enumerate(req.candidates) if c.ad_id in bad)
        raise InvalidEvent(f"candidates[{i}].features", "the model gives no finite score "
                           "for it (a value beyond what it learned from?)")


def _finite(scores: np.ndarray, field: str) -> None:
    """A model that gives no finite score for an input is answered 400, naming it."""
    bad = np.flatnonzero(~np.isfinite(scores))
    if len(bad):
        raise InvalidEvent(field.format(int(bad[0])), "the model gives no finite score for "
                           "it (a value beyond what it learned from?)")


MAX_EXAMPLES = 10_000
# the most a replica's estimate of answering a /recommend may shed ahead of its deadline
EXPECTED_CAP = 0.1
MAX_BODY = 8 * 1024 * 1024  # bytes of a request body; past it 413


class Serving:
    def __init__(self, store: ModelStore, metrics: ServingMetrics, default_output: str,
                 request_log=None, popularity=None, example_log=None, answer_log=None,
                 quotas: Quotas | None = None):
        self.store, self.m, self.default_output = store, metrics, default_output
        self.quotas = quotas or Quotas()
        self.request_log, self.answer_log = request_log, answer_log
        self.example_log = example_log
        self.ranker = Ranker(store, default_output, popularity)
        # seconds this replica takes to answer a /recommend once its body is read: a moving
        # average, so a request whose deadline would pass before it is answered is shed now
        self.expected = 0.0

    async def recommend(self, request: web.Request) -> web.Response:
        t0 = time.perf_counter()
        raw = await _read(request)
        t_read = time.perf_counter()
        d = parse_object(raw, "body")
        self.quotas.check(_check_tenant(request, d, "recommend"), "requests_per_s")
        added = {k: v for k, v in (("id", d.get("request_id") or uuid.uuid4().hex),
                                   ("event_time", time.time())) if k not in d}
        d.update(added)
        req = AdRequest.from_dict(d)  # InvalidEvent -> 400 naming the field
        model = d.get("model")
        if model is not None and not isinstance(model, str):
            raise InvalidEvent("model", "must be a string")
        if req.deadline is not None and time.time() + self.expected >= req.deadline:
            # it waited behind others past the point where an answer is of use (or where one
            # would come too late): scoring it would only make the requests behind it late too
            self.m.shed.labels(req.tenant if self.store.get(req.tenant) else "unknown").inc()
            return _error(503, "overloaded: the request's deadline passed, or would before it "
                               f"is answered (about {self.expected * 1000:.1f} ms here)",
                          retry_after=1)
        [rec] = self.ranker.rank_many([req], model)
        _finite_ranked(req, rec)
        # a tenant with no model is a label only once it has one: made-up names cost nothing
        label = "unknown" if rec.fallback else req.tenant
        if rec.fallback:
            self.m.fallback.labels(label, rec.fallback_kind).inc()
        done = time.perf_counter()
        self.expected += 0.05 * (min(done - t_read, EXPECTED_CAP) - self.expected)
        took = done - t0
        rec.took_ms = round(took * 1000, 3)
        self.m.latency.labels(label).observe(took)
        self.m.candidates.observe(len(req.candidates))
        body = orjson.dumps(rec.body())
        if self.request_log is not None:  # after the answer is ready; librdkafka queues it
            asyncio.get_running_loop().call_soon(self._log, req.id, raw, added, rec, body)
        return _ok_encoded(body)

    def busy(self, endpoint: str, why: str) -> web.Response:
        """The cheapest answer there is, for a call the replica has no room for now."""
        self.m.busy.labels(endpoint).inc()
        return _error(503, f"{BUSY}: {why}", retry_after=1)

    def _log(self, request_id: str, raw: bytes, added: dict, rec: Recommendation,
             answer: bytes) -> None:
        """The request as it came (it was valid), with the id and time it was given here and
        marked ``served`` (the worker joins its feedback and does not score it again): the
        worker validates it again; re-encoding 100 candidates would cost more. And the answer,
        to the recommendations topic, as the worker publishes its own."""
        try:
            body = raw.strip()
            body = orjson.dumps({**added, "served": True})[:-1] + b"," + body[1:]
            if self.request_log(request_id.encode(), body) is False:
                self.m.errors.labels("request_log", "queue_full").inc()
                return
            if self.answer_log is not None and \
                    self.answer_log(request_id.encode(), rec.record(answer)) is False:
                self.m.errors.labels("answer_log", "queue_full").inc()
            self.m.logged.inc()
        except Exception as exc:  # logging must never fail a request
            self.m.errors.labels("request_log", type(exc).__name__).inc()
            log.warning("request %s not logged to Kafka: %s", request_id, exc)

    async def predict(self, request: web.Request) -> web.Response:
        d, tenant = await _tenant_body(request, "predict")
        self.quotas.check(tenant, "requests_per_s")
        feats = d.get("features")
        if not isinstance(feats, dict):
            raise InvalidEvent("features", "must be an object of features")
        AdRequest.from_dict({"id": "p", "event_time": 0, "tenant": tenant, "user": feats,
                             "candidates": [{"ad_id": "x"}]})  # same feature rules
        snap = self.store.get(tenant)
        if snap is None:
            return _error(404, f"no model for tenant {tenant!r} yet", "tenant")
        used = self.ranker.output_for(snap, d.get("model") if isinstance(d.get("model"),
                                                                         str) else None)
        p = snap.score([feats], used)
        _finite(p, "features")
        p = float(p[0])
        return _ok({"p": p, "model_version": snap.label, "model": used})

    async def models(self, request: web.Request) -> web.Response:
        now = time.time()
        out = {}
        who = request[PRINCIPAL]
        for tenant, s in self.store.all().items():
            if not who.sees(tenant):
                continue
            out[tenant] = {"version": s.label, "age_s": round(now - s.created_at, 3),
                           "outputs": s.outputs(), "default": self.ranker.output_for(s, None),
                           "metrics": {k: {m: v for m, v in mm.items() if v == v}
                                       for k, mm in s.metrics.items()}}
        return _ok({"tenants": out, "updates": self.store.updates})

    async def examples(self, request: web.Request) -> web.Response:
        """Labelled examples handed over by a user: validated as a whole (one bad example
        refuses the call, naming it), then sent to the training topic; the worker learns them."""
        d, tenant = await _tenant_body(request, "examples")
        rows = d.get("examples")
        if not isinstance(rows, list) or not rows:
            raise InvalidEvent("examples", "must be a non-empty list")
        if len(rows) > MAX_EXAMPLES:
            raise InvalidEvent("examples", f"more than {MAX_EXAMPLES} in one call")
        now, good = time.time(), []
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise InvalidEvent(f"examples[{i}]", "must be an object")
            row = {"event_time": now, "source": "api", **row, "tenant": tenant}
            row.setdefault("id", uuid.uuid4().hex)
            try:
                good.append(TrainingExample.from_dict(row))
            except InvalidEvent as exc:
                raise InvalidEvent(f"examples[{i}].{exc.field}", exc.reason) from None
        self.quotas.check(tenant, "examples_per_s", len(good))
        if self.example_log is None:
            return _error(503, "this replica takes no examples (no training topic)")
        try:  # confirmed by the broker before the 202; keyed by tenant: learned in call order
            await asyncio.to_thread(self.example_log, [(tenant.encode(), encode(e))
                                                       for e in good])
        except (DeliveryFailed, TimeoutError, KafkaException, BufferError) as exc:
            self.m.errors.labels("examples", type(exc).__name__).inc()
            log.warning("POST /examples: Kafka did not take %d examples: %s", len(good), exc)
            return _error(503, f"{exc}; send them again (an id is learned once)",
                          retry_after=5)
        self.m.examples.labels(tenant).inc(len(good))
        return _ok({"accepted": len(good), "ids": [e.id for e in good]}, status=202)

    async def noop(self, request: web.Request) -> web.Response:
        await _body(request)
        return _ok({})


def create_serving_app(store: ModelStore, registry: CollectorRegistry | None = None,
                       default_output: str = ENSEMBLE_PREFIX + "stacking", request_log=None,
                       popularity=None, ready=lambda: True, access: AccessControl | None = None,
                       example_log=None, answer_log=None,
                       quotas: Quotas | None = None,
                       graphs: Graphs | None = None,
                       cluster: ClusterView | None = None,
                       tasks: TaskRoutes | None = None,
                       max_lag: float = MAX_LAG, lag=None,
                       max_in_flight: int = MAX_IN_FLIGHT) -> web.Application:
    """The serving API. While its event loop runs more than ``max_lag`` seconds late (``lag``:
    a callable giving how late; by default a :class:`LoopLag` started with the app), or while
    it holds ``max_in_flight`` calls of an endpoint already, calls other than probes and
    scrapes (of that endpoint) are answered 503 with ``Retry-After`` before their bodies are
    read (:mod:`streams.serving.overload`). Counted per endpoint: a burst of slow calls of
    one (``/examples`` waiting on Kafka) does not shed another (``/recommend``)."""
    registry = registry or CollectorRegistry()
    metrics = build_serving_metrics(registry)
    s = Serving(store, metrics, default_output, request_log, popularity, example_log,
                answer_log, quotas)
    access = access or AccessControl(None)
    loop_lag = LoopLag()
    late = lag or loop_lag.late
    in_flight: dict[str, int] = {}

    @web.middleware
    async def errors(request: web.Request, handler):
        # a route's path, never an arbitrary one: unknown paths share one label
        resource = request.match_info.route.resource
        endpoint = resource.canonical if resource is not None else "unknown"
        held = in_flight.get(endpoint, 0)
        if endpoint not in UNLIMITED:
            behind = late()
            why = (f"its loop runs {behind:.3f} s late (at most {max_lag:g})" if behind > max_lag
                   else f"{held} {endpoint} calls in flight (at most {max_in_flight})"
                   if held >= max_in_flight else None)
            if why is not None:
                metrics.requests.labels(endpoint, "503").inc()
                return s.busy(endpoint, why)
        in_flight[endpoint] = held + 1
        try:
            return await _handle(request, handler, endpoint)
        finally:
            in_flight[endpoint] -= 1

    async def _handle(request: web.Request, handler, endpoint: str) -> web.StreamResponse:
        try:
            action = PROTECTED.get((request.method, endpoint)) or PROTECTED.get(endpoint)
            if action is not None:
                who = access.authenticate(request.headers.get("Authorization"),
                                          request.headers.get("X-API-Key"))
                who.check(action)
                request[PRINCIPAL] = who
            resp = await handler(request)
        except (ConnectionResetError, ClientPayloadError) as exc:  # the client went away
            metrics.aborted.labels(endpoint).inc()
            log.info("%s %s: the client aborted its request (%s)", request.method,
                     endpoint, type(exc).__name__)
            resp = _error(400, "the request body was cut short")
        except AccessDenied as exc:
            resp = _error(exc.status, str(exc))
            metrics.denied.labels(endpoint, str(exc.status)).inc()
        except InvalidEvent as exc:
            resp = _error(400, str(exc), exc.field)
        except QuotaExceeded as exc:
            resp = _error(429, str(exc), retry_after=exc.retry_after)
            label = exc.tenant if s.quotas.named(exc.tenant) else "*"
            metrics.over_quota.labels(label, exc.quota).inc()
        except LookupError as exc:
            resp = _error(404, str(exc), getattr(exc, "field", "model"))
        except web.HTTPException as exc:
            resp = _error(exc.status, exc.reason or "error")
            if "Allow" in exc.headers:  # a 405 says which methods the path takes
                resp.headers["Allow"] = exc.headers["Allow"]
        metrics.requests.labels(endpoint, str(resp.status)).inc()
        return resp

    async def healthz(request):
        return _ok({"ok": True})

    async def readyz(request):
        if ready():
            return _ok({"ready": True})
        return _error(503, "not ready: still reading the model-updates topic")

    async def openapi(request):
        return _ok(spec(secured=not access.open, graphs=graphs is not None,
                        tasks=tasks is not None, cluster=cluster is not None))

    async def prom(request):
        now = time.time()
        for tenant, snap in store.all().items():
            metrics.version.labels(tenant).set(snap.version)
            metrics.age.labels(tenant).set(now - snap.created_at)
        return web.Response(body=generate_latest(_exposed(registry)),
                            content_type="text/plain", charset="utf-8")

    app = web.Application(middlewares=[errors], client_max_size=MAX_BODY)
    if lag is None:
        async def start_lag(app):
            loop_lag.start()
            yield
            loop_lag.stop()
        app.cleanup_ctx.append(start_lag)
    app.router.add_post("/recommend", s.recommend)
    app.router.add_post("/predict", s.predict)
    app.router.add_post("/examples", s.examples)
    app.router.add_post("/noop", s.noop)
    app.router.add_get("/models", s.models)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/metrics", prom)
    if graphs is not None:
        graphs.add_routes(app)
    if cluster is not None:
        app.router.add_get("/cluster", cluster.get)
    if tasks is not None:
        tasks.add_routes(app)
    app[SERVING] = s
    app[METRICS] = metrics
    return app


def _exposed(registry: CollectorRegistry) -> CollectorRegistry:
    """What /metrics shows: this replica's registry, or, for replicas of one
    ``aimass serve --workers N`` (``PROMETHEUS_MULTIPROC_DIR`` set), all of them together."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return registry
    from prometheus_client import multiprocess

    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged, path)
    return merged
