"""The worker's Prometheus metrics, named like the app's (`cargohold_` prefix).

They live in a registry of their own: the worker imports the app, and the app's HTTP metrics
(all zero here) have no place on the worker's scrape. One process, so no multiprocess files.
"""

from __future__ import annotations

import logging

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

REGISTRY = CollectorRegistry(auto_describe=True)

RECEIVED = Counter(
    "cargohold_worker_messages_received_total",
    "Sign-up messages received from the queue (a retried message counts each time).",
    registry=REGISTRY,
)
APPLIED = Counter(
    "cargohold_worker_messages_applied_total",
    "Sign-up messages whose user (and organisation, invitation) was committed.",
    registry=REGISTRY,
)
FAILED = Counter(
    "cargohold_worker_messages_failed_total",
    "Messages not applied, by reason: poison (never will be; left for the dead-letter queue) "
    "or retry (a failure that may pass, retried later).",
    ["reason"],
    registry=REGISTRY,
)
DELETED = Counter(
    "cargohold_worker_messages_deleted_total",
    "Messages deleted from the queue after their commit.",
    registry=REGISTRY,
)
BATCH_DURATION = Histogram(
    "cargohold_worker_batch_duration_seconds",
    "Time to work through one received batch, the long-poll wait excluded.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
    registry=REGISTRY,
)
VISIBILITY_EXTENSIONS = Counter(
    "cargohold_worker_visibility_extensions_total",
    "Visibility heartbeats for slow messages, by outcome: extended or failed.",
    ["outcome"],
    registry=REGISTRY,
)
LAST_POLL = Gauge(
    "cargohold_worker_last_successful_poll_timestamp_seconds",
    "Unix time of the last receive that SQS answered (with or without messages).",
    registry=REGISTRY,
)

# Every labelled series exists from the start, so rate() and alerts see a 0 before the first.
for _reason in ("poison", "retry"):
    FAILED.labels(_reason)
for _outcome in ("extended", "failed"):
    VISIBILITY_EXTENSIONS.labels(_outcome)


def serve(host: str, port: int) -> int | None:
    """Serve /metrics on host:port in a background thread; port 0 means off. The bound port."""
    if not port:
        return None
    server, _thread = start_http_server(port, addr=host, registry=REGISTRY)
    bound = server.server_address[1]
    logging.getLogger("worker").info("metrics served", extra={"host": host, "port": bound})
    return bound
