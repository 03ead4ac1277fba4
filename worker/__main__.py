"""`python -m worker`: consume the sign-up queue until SIGTERM, then exit 0."""

from __future__ import annotations

import logging
import sys
from urllib.parse import urlparse

from app import create_app
from app.config import Settings
from worker import metrics
from worker.consumer import Worker
from worker.logs import configure


def sqs_client(settings: Settings):
    import boto3

    # Queue URLs name their region (https://sqs.<region>.amazonaws.com/<account>/<name>).
    host = urlparse(settings.signup_queue_url).hostname or ""
    parts = host.split(".")
    region = parts[1] if len(parts) > 3 and parts[0] == "sqs" else None
    return boto3.session.Session().client(
        "sqs", region_name=region, endpoint_url=settings.sqs_endpoint or None
    )


def main() -> int:
    settings = Settings.from_env()
    configure(settings.log_format)
    if not settings.signup_queue_url:
        logging.getLogger("worker").error("CARGOHOLD_SIGNUP_QUEUE_URL is not set")
        return 2
    app = create_app(settings)
    worker = Worker(
        app,
        sqs_client(settings),
        settings.signup_queue_url,
        batch=settings.worker_batch,
        wait=settings.worker_wait,
        visibility=settings.worker_visibility,
        retry_delay=settings.worker_retry_delay,
    )
    metrics.serve(settings.worker_metrics_host, settings.worker_metrics_port)
    worker.install_signal_handlers()
    worker.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
