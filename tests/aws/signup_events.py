"""Cognito trigger events as Cognito sends them, and a Lambda context with a deadline."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from tests.support.moto import REGION, Pool


class Context:
    """The part of the Lambda context the trigger uses."""

    def __init__(self, millis: int = 5000, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.deadline = clock() + millis / 1000
        self.aws_request_id = str(uuid.uuid4())
        self.function_name = "cargohold-signup"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - self.clock()) * 1000))


def post_confirmation(pool: Pool, username: str, metadata: dict | None = None) -> dict:
    """The PostConfirmation_ConfirmSignUp event for a user the pool has confirmed."""
    attributes = {**pool.attributes(username), "cognito:user_status": "CONFIRMED"}
    return {
        "version": "1",
        "region": REGION,
        "userPoolId": pool.pool_id,
        "userName": username,
        "callerContext": {
            "awsSdkVersion": "aws-sdk-unknown-unknown",
            "clientId": pool.client_id,
        },
        "triggerSource": "PostConfirmation_ConfirmSignUp",
        "request": {"userAttributes": attributes, "clientMetadata": metadata or {}},
        "response": {},
    }


def pre_sign_up(pool: Pool, username: str, email: str) -> dict:
    return {
        "version": "1",
        "region": REGION,
        "userPoolId": pool.pool_id,
        "userName": username,
        "callerContext": {
            "awsSdkVersion": "aws-sdk-unknown-unknown",
            "clientId": pool.client_id,
        },
        "triggerSource": "PreSignUp_SignUp",
        "request": {"userAttributes": {"email": email}, "validationData": None},
        "response": {"autoConfirmUser": False, "autoVerifyEmail": False, "autoVerifyPhone": False},
    }
