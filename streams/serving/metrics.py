"""Metrics of a serving replica, built on the registry it is given."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1,
                   0.25, 0.5, 1.0)


@dataclass
class ServingMetrics:
    requests: Counter
    latency: Histogram
    candidates: Histogram
    fallback: Counter
    version: Gauge
    age: Gauge
    swaps: Counter
    logged: Counter
    denied: Counter
    examples: Counter
    state_rejected: Counter
    errors: Counter
    aborted: Counter
    shed: Counter
    over_quota: Counter
    busy: Counter


def build_serving_metrics(registry: CollectorRegistry) -> ServingMetrics:
    return ServingMetrics(
        requests=Counter("aimass_http_requests_total", "HTTP requests by endpoint and status",
                         ["endpoint", "status"], registry=registry),
        latency=Histogram("aimass_recommend_seconds", "Time to answer /recommend (server side); "
                          "tenant 'unknown' for tenants with no model yet", ["tenant"],
                          buckets=LATENCY_BUCKETS, registry=registry),
        candidates=Histogram("aimass_recommend_candidates", "Candidates per /recommend",
                             buckets=(1, 5, 10, 25, 50, 100, 200, 500, 1000), registry=registry),
        fallback=Counter("aimass_recommend_fallback_total", "Answers by the fallback (no model)",
                         ["tenant", "kind"], registry=registry),
        # (replicas of one `serve --workers N`: the lowest version any serves, the oldest age)
        version=Gauge("aimass_serving_model_version", "Model version served", ["tenant"],
                      registry=registry, multiprocess_mode="livemin"),
        age=Gauge("aimass_serving_model_age_seconds", "Age of the model served", ["tenant"],
                  registry=registry, multiprocess_mode="livemax"),
        swaps=Counter("aimass_model_swaps_total", "Model versions swapped in", ["tenant"],
                      registry=registry),
        logged=Counter("aimass_requests_logged_total", "Requests logged to Kafka for the join",
                       registry=registry),
        denied=Counter("aimass_http_denied_total", "Calls refused: 401 no or unknown key, 403 "
                       "role or tenant not allowed", ["endpoint", "status"], registry=registry),
        examples=Counter("aimass_api_examples_total", "Labelled examples taken by POST /examples",
                         ["tenant"], registry=registry),
        state_rejected=Counter("aimass_state_rejected_total", "Model updates not read "
                               "(unsigned, another key, old format, malformed)", ["reason"],
                               registry=registry),
        errors=Counter("aimass_errors_total", "Exceptions caught, by component and kind",
                       ["component", "kind"], registry=registry),
        aborted=Counter("aimass_http_aborted_total", "Requests whose client went away before "
                        "its body was read", ["endpoint"], registry=registry),
        shed=Counter("aimass_recommend_shed_total", "Requests answered 503 unscored: their "
                     "deadline passed while they waited (overload)", ["tenant"],
                     registry=registry),
        over_quota=Counter("aimass_quota_exceeded_total", "Calls refused 429: the tenant was "
                           "over its quota ('*': a tenant under the default)",
                           ["tenant", "quota"], registry=registry),
        busy=Counter("aimass_http_busy_total", "Calls answered 503 before their body was "
                     "read: the replica ran behind or held its most calls of the endpoint at "
                     "once already", ["endpoint"],
                     registry=registry),
    )
