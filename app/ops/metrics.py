"""Prometheus metrics, named after Distribution's `registry_http_*` / `registry_storage_*`
families with a `cargohold_` prefix.

Under gunicorn every worker is its own process, so the metrics live in prometheus_client's
multiprocess files (PROMETHEUS_MULTIPROC_DIR, set up by gunicorn.conf.py) and a scrape of any
worker adds up all of them. Labels are bounded: a route is the endpoint's name, never the path.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

# gunicorn.conf.py makes this folder; a command run beside it (`flask bootstrap`) may come first.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

# From a manifest GET to a multi-gigabyte layer push.
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
SIZE_BUCKETS = tuple(float(4**i * 256) for i in range(12))  # 256 B .. 1 GiB

HTTP_REQUESTS = Counter(
    "cargohold_http_requests_total",
    "HTTP requests answered, by method, route and status code.",
    ["method", "route", "code"],
)
HTTP_DURATION = Histogram(
    "cargohold_http_request_duration_seconds",
    "Time from a request's arrival to the last byte of its answer.",
    ["method", "route"],
    buckets=DURATION_BUCKETS,
)
HTTP_REQUEST_SIZE = Histogram(
    "cargohold_http_request_size_bytes",
    "Request body bytes read; the sum is the bytes received.",
    ["route"],
    buckets=SIZE_BUCKETS,
)
HTTP_RESPONSE_SIZE = Histogram(
    "cargohold_http_response_size_bytes",
    "Response body bytes sent (sendfile included); the sum is the bytes sent.",
    ["route"],
    buckets=SIZE_BUCKETS,
)
HTTP_IN_FLIGHT = Gauge(
    "cargohold_http_in_flight_requests",
    "Requests being served now, over all workers.",
    multiprocess_mode="livesum",
)
UPLOAD_SESSIONS = Counter(
    "cargohold_registry_upload_sessions_total",
    "Blob upload sessions by outcome: started, completed (monolithic pushes included), cancelled.",
    ["outcome"],
)
STORAGE_ERRORS = Counter(
    "cargohold_storage_errors_total",
    "Requests that failed because the blob store was unavailable, by driver.",
    ["driver"],
)
DATABASE_ERRORS = Counter(
    "cargohold_database_errors_total",
    "Requests that failed because the database was unavailable.",
)
LOGIN_FAILURES = Counter(
    "cargohold_auth_login_failures_total",
    "Refused logins: invalid credentials, or throttled after too many failures.",
    ["reason"],
)


class _OpenUploads:
    """Upload sessions open right now, counted in the database at scrape time, so every
    replica reports the same figure."""

    def collect(self):
        from sqlalchemy import func, select

        from app.models import Upload, db

        gauge = GaugeMetricFamily(
            "cargohold_registry_upload_sessions_open", "Upload sessions open now."
        )
        try:
            gauge.add_metric([], db.session.execute(select(func.count(Upload.id))).scalar_one())
        except Exception:  # a scrape must not fail because the database is down
            db.session.rollback()
            return []
        return [gauge]


def exposition() -> tuple[bytes, str]:
    """The text a scrape gets, aggregated over every worker when there are several."""
    extra = CollectorRegistry(auto_describe=False)
    extra.register(_OpenUploads())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    return body + generate_latest(extra), CONTENT_TYPE_LATEST
