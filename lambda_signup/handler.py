"""Cognito triggers for Cargohold sign-ups.

PostConfirmation (a user confirmed their sign-up): publish a versioned sign-up message to SQS,
where the Cargohold worker makes the user. PreSignUp (optional): refuse e-mail domains outside
ALLOWED_EMAIL_DOMAINS and usernames Cargohold cannot hold. Both return the event unchanged, as
Cognito requires.

Environment: SIGNUP_QUEUE_URL (required for PostConfirmation), ALLOWED_EMAIL_DOMAINS (comma
separated; empty allows all). boto3 comes with the Lambda runtime; AWS_ENDPOINT_URL_SQS points it
at another SQS endpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
import time
from datetime import UTC, datetime
from typing import Any

MESSAGE_TYPE = "cargohold.signup"
VERSION = 1
# One SQS attempt takes at most its connect and read timeouts.
CONNECT_TIMEOUT_S = 1
READ_TIMEOUT_S = 1
# Cognito waits five seconds for a trigger; a retry starts only if this much time is left for it.
ATTEMPT_BUDGET_MS = (CONNECT_TIMEOUT_S + READ_TIMEOUT_S) * 1000
SAFETY_MS = 300
TRANSIENT_CODES = {
    "InternalError",
    "InternalFailure",
    "ServiceUnavailable",
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "RequestTimeout",
    "KmsThrottled",
    "AWS.SimpleQueueService.RequestThrottled",
}
SIGN_UP = "PostConfirmation_ConfirmSignUp"
PRE_SIGN_UP = ("PreSignUp_SignUp", "PreSignUp_AdminCreateUser")

_sqs = None


class InvalidEvent(ValueError):
    """The event is not the shape Cognito sends."""


def log(level: str, message: str, **fields: Any) -> None:
    """One JSON object per line: CloudWatch Logs Insights reads the fields as they are."""
    record = {"time": datetime.now(UTC).isoformat(), "level": level, "message": message, **fields}
    print(json.dumps(record, default=str), file=sys.stdout, flush=True)


def sqs_client():
    global _sqs
    if _sqs is None:
        import boto3
        from botocore.config import Config

        # One HTTP request per call (`max_attempts` would count retries, not requests) and short
        # timeouts: the retries below know the deadline.
        _sqs = boto3.client(
            "sqs",
            config=Config(
                connect_timeout=CONNECT_TIMEOUT_S,
                read_timeout=READ_TIMEOUT_S,
                retries={"mode": "standard", "total_max_attempts": 1},
            ),
        )
    return _sqs


def _attributes(event: dict) -> dict[str, str]:
    request = event.get("request")
    if not isinstance(request, dict):
        raise InvalidEvent("the event has no request")
    attributes = request.get("userAttributes")
    if not isinstance(attributes, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in attributes.items()
    ):
        raise InvalidEvent("request.userAttributes must map names to strings")
    return attributes


def _field(event: dict, name: str) -> str:
    value = event.get(name)
    if not isinstance(value, str) or not value:
        raise InvalidEvent(f"the event has no {name}")
    return value


def signup_message(event: dict) -> dict:
    """The versioned message for a confirmed sign-up."""
    attributes = _attributes(event)
    sub = attributes.get("sub")
    if not sub:
        raise InvalidEvent("request.userAttributes has no sub")
    metadata = event["request"].get("clientMetadata") or {}
    if not isinstance(metadata, dict):
        raise InvalidEvent("request.clientMetadata must be an object")
    invitation = metadata.get("invitation") or attributes.get("custom:invitation") or None
    return {
        "type": MESSAGE_TYPE,
        "version": VERSION,
        "sub": sub,
        "username": _field(event, "userName"),
        "user_pool_id": _field(event, "userPoolId"),
        "email": attributes.get("email"),
        "email_verified": attributes.get("email_verified") == "true",
        "attributes": attributes,
        "invitation": invitation,
        "occurred_at": datetime.now(UTC).isoformat(),
    }


def _transient(exc: Exception) -> bool:
    from botocore.exceptions import (
        ClientError,
        ConnectionClosedError,
        ConnectTimeoutError,
        EndpointConnectionError,
        ReadTimeoutError,
    )

    network = (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError)
    network += (ConnectionClosedError,)
    if isinstance(exc, network):
        return True
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return code in TRANSIENT_CODES or status >= 500
    return False


def pause(seconds: float) -> None:
    """The back-off between attempts (its own name, so a test can replace the clock)."""
    time.sleep(seconds)


def publish(sqs, queue_url: str, message: dict, context) -> str:
    """Send the message, retrying transient errors while the trigger's time allows; returns the
    SQS message id. On a FIFO queue the `sub` deduplicates: a retried trigger sends once."""
    body = json.dumps(message, sort_keys=True, separators=(",", ":"))
    params: dict[str, Any] = {
        "QueueUrl": queue_url,
        "MessageBody": body,
        "MessageAttributes": {
            "type": {"DataType": "String", "StringValue": MESSAGE_TYPE},
            "version": {"DataType": "Number", "StringValue": str(VERSION)},
            "sub": {"DataType": "String", "StringValue": message["sub"]},
        },
    }
    if queue_url.endswith(".fifo"):
        dedup = hashlib.sha256(f"signup:{message['user_pool_id']}:{message['sub']}".encode())
        params["MessageDeduplicationId"] = dedup.hexdigest()
        params["MessageGroupId"] = message["sub"]
    attempt = 0
    while True:
        attempt += 1
        try:
            answer = sqs.send_message(**params)
        except Exception as exc:
            if not _transient(exc):
                raise
            delay = min(0.05 * 2**attempt, 0.8) * random.uniform(0.5, 1.0)
            left = context.get_remaining_time_in_millis() - delay * 1000
            if left < ATTEMPT_BUDGET_MS + SAFETY_MS:
                log("error", "sqs unavailable, giving up", attempt=attempt, error=str(exc))
                raise
            log("warning", "sqs error, retrying", attempt=attempt, error=str(exc))
            pause(delay)
            continue
        log("info", "sign-up published", sub=message["sub"], message_id=answer.get("MessageId"))
        return answer.get("MessageId", "")


def allowed_domain(email: str, allowed: str) -> bool:
    domains = {d.strip().lower().lstrip("@") for d in allowed.split(",") if d.strip()}
    if not domains:
        return True
    _, at, domain = email.rpartition("@")
    return bool(at) and domain.lower() in domains


def check_signup(event: dict) -> None:
    """PreSignUp: refuse what Cargohold could not hold, before the account exists."""
    username = _field(event, "userName")
    if len(username) > 64 or ":" in username or "+" in username:
        raise InvalidEvent("usernames are at most 64 characters and contain no ':' or '+'")
    email = _attributes(event).get("email", "")
    if not allowed_domain(email, os.environ.get("ALLOWED_EMAIL_DOMAINS", "")):
        raise InvalidEvent("sign-ups are not open to this e-mail domain")


def handler(event: dict, context) -> dict:
    if not isinstance(event, dict):
        raise InvalidEvent("the event must be an object")
    source = event.get("triggerSource")
    base = {"trigger": source, "user_pool_id": event.get("userPoolId")}
    if source in PRE_SIGN_UP:
        try:
            check_signup(event)
        except InvalidEvent as exc:
            log("info", "sign-up refused", reason=str(exc), **base)
            raise
        return event
    if source != SIGN_UP:
        # Confirming a forgotten password also fires PostConfirmation: nothing to publish.
        log("info", "event ignored", **base)
        return event
    try:
        message = signup_message(event)
    except InvalidEvent as exc:
        log("error", "invalid event", reason=str(exc), **base)
        raise
    publish(sqs_client(), os.environ["SIGNUP_QUEUE_URL"], message, context)
    return event
