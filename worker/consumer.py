"""The sign-up queue consumer.

At-least-once and idempotent: a message is deleted only after everything it asked for is
committed, and applying it twice changes nothing. A message that fails is left in the queue
(made visible again after a delay growing with its receive count); after the queue's redrive
count SQS moves it to the dead-letter queue. Slow work keeps its messages hidden with visibility
heartbeats. On SIGTERM the batch in hand is finished, then the loop ends.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

from flask import Flask

from app.access.signup import BadMessage, parse, provision
from app.models.transaction import unit_of_work
from worker import metrics

log = logging.getLogger("worker")

MAX_VISIBILITY = 12 * 3600  # SQS's limit


class Heartbeat:
    """Extends a message's visibility while it is being worked on."""

    def __init__(self, sqs, queue_url: str, receipt: str, visibility: int) -> None:
        self.sqs, self.queue_url, self.receipt = sqs, queue_url, receipt
        self.visibility = visibility
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="visibility", daemon=True)

    def _beat(self) -> None:
        # A third of the timeout between beats leaves two chances before the message reappears.
        while not self._done.wait(max(self.visibility / 3, 0.5)):
            try:
                self.sqs.change_message_visibility(
                    QueueUrl=self.queue_url,
                    ReceiptHandle=self.receipt,
                    VisibilityTimeout=self.visibility,
                )
            except Exception as exc:  # a missed beat is logged, the work goes on
                metrics.VISIBILITY_EXTENSIONS.labels("failed").inc()
                log.warning("visibility not extended: %s", exc)
            else:
                metrics.VISIBILITY_EXTENSIONS.labels("extended").inc()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._done.set()
        self._thread.join()


class Worker:
    def __init__(
        self,
        app: Flask,
        sqs,
        queue_url: str,
        *,
        batch: int = 10,
        wait: int = 20,
        visibility: int = 60,
        retry_delay: int = 30,
        before: Callable[[dict], None] | None = None,
        after: Callable[[dict], None] | None = None,
    ) -> None:
        self.app, self.sqs, self.queue_url = app, sqs, queue_url
        self.batch = max(1, min(batch, 10))
        self.wait = max(0, min(wait, 20))
        self.visibility = max(1, min(visibility, MAX_VISIBILITY))
        self.retry_delay = max(0, retry_delay)
        # Hooks around each message's work (tests use them to act mid-batch).
        self.before, self.after = before, after
        self.stopping = threading.Event()

    def stop(self, signum: int | None = None, _frame=None) -> None:
        if not self.stopping.is_set():
            log.info("stopping after this batch", extra={"signal": signum})
        self.stopping.set()

    def install_signal_handlers(self) -> dict:
        """SIGTERM (ECS, podman stop) and SIGINT stop the loop; returns the previous handlers."""
        return {s: signal.signal(s, self.stop) for s in (signal.SIGTERM, signal.SIGINT)}

    def run(self, max_polls: int | None = None) -> None:
        log.info("consuming", extra={"queue": self.queue_url})
        polls = 0
        while not self.stopping.is_set() and (max_polls is None or polls < max_polls):
            self.poll()
            polls += 1
        log.info("stopped")

    def poll(self) -> int:
        """One long poll and its whole batch; the number of messages handled."""
        answer = self.sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self.batch,
            WaitTimeSeconds=self.wait,
            VisibilityTimeout=self.visibility,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
            MessageAttributeNames=["All"],
        )
        metrics.LAST_POLL.set_to_current_time()
        messages = answer.get("Messages", [])
        if not messages:
            return 0
        metrics.RECEIVED.inc(len(messages))
        started = time.monotonic()
        # Received messages are ours until their visibility ends: finish them even when asked
        # to stop, so none waits out a timeout for nothing.
        for message in messages:
            self.handle(message)
        metrics.BATCH_DURATION.observe(time.monotonic() - started)
        return len(messages)

    def handle(self, message: dict) -> bool:
        """Apply one message; True when it was applied and deleted."""
        receipt = message["ReceiptHandle"]
        count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        fields = {"message_id": message.get("MessageId"), "receive_count": count}
        with Heartbeat(self.sqs, self.queue_url, receipt, self.visibility):
            if self.before:
                self.before(message)
            try:
                signup = parse(message.get("Body", ""))
                fields["sub"] = signup.sub
                with self.app.app_context(), unit_of_work():
                    user = provision(signup, self.app.extensions["cargohold.settings"])
                    fields["user"] = user.username
                metrics.APPLIED.inc()
            except BadMessage as exc:
                metrics.FAILED.labels("poison").inc()
                log.error("poison message left for the dead-letter queue: %s", exc, extra=fields)
                self._retry_later(receipt, count)
                return False
            except Exception as exc:  # any other failure is retried later
                metrics.FAILED.labels("retry").inc()
                log.exception("message failed, will be retried: %s", exc, extra=fields)
                self._retry_later(receipt, count)
                return False
        # Committed: only now may the message go.
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=receipt)
        metrics.DELETED.inc()
        log.info("sign-up applied", extra=fields)
        if self.after:
            self.after(message)
        return True

    def _retry_later(self, receipt: str, count: int) -> None:
        delay = min(self.retry_delay * count, MAX_VISIBILITY)
        try:
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=receipt, VisibilityTimeout=delay
            )
        except Exception as exc:  # the visibility timeout brings it back anyway
            log.warning("could not reschedule the message: %s", exc)
