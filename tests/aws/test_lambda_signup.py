"""The Cognito sign-up trigger, called with Cognito's event shapes, publishing to SQS in moto."""

from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import sys
import uuid
import zipfile

import pytest
from botocore.exceptions import ClientError

from lambda_signup import handler as trigger
from tests.aws.signup_events import Context, post_confirmation, pre_sign_up
from tests.support.moto import FlakyProxy, create_queues
from tests.support.server import ROOT

PASSWORD = "Corr3ct-horse-battery"


@pytest.fixture(autouse=True)
def patient_sqs(monkeypatch):
    """A fresh SQS client for each test, whose calls do not time out on a busy machine: a
    timed-out call would be retried, and a retry would change what the tests count. The
    deadline logic is tested with simulated time (LambdaTime)."""
    monkeypatch.setattr(trigger, "CONNECT_TIMEOUT_S", 30)
    monkeypatch.setattr(trigger, "READ_TIMEOUT_S", 30)
    monkeypatch.setattr(trigger, "_sqs", None)


@pytest.fixture
def lambda_env(monkeypatch, moto, queues):
    """The function's environment, as terraform/lambda.tf sets it."""
    monkeypatch.setenv("SIGNUP_QUEUE_URL", queues.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", moto.url)
    monkeypatch.delenv("ALLOWED_EMAIL_DOMAINS", raising=False)
    monkeypatch.setattr(trigger, "_sqs", None)
    return queues


def drain(moto, url: str) -> list[dict]:
    sqs = moto.client("sqs")
    found = []
    while True:
        batch = sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return found
        found += batch


def confirmed(pool) -> str:
    username = f"user{uuid.uuid4().hex[:8]}"
    pool.sign_up(username, PASSWORD, f"{username}@Example.com")
    return username


def test_post_confirmation_publishes_a_versioned_message_and_returns_the_event(
    lambda_env, moto, pool
):
    username = confirmed(pool)
    event = post_confirmation(pool, username, {"invitation": "42"})
    original = copy.deepcopy(event)
    assert trigger.handler(event, Context()) == original

    (message,) = drain(moto, lambda_env.url)
    body = json.loads(message["Body"])
    attributes = pool.attributes(username)
    assert body["type"] == "cargohold.signup" and body["version"] == 1
    assert body["sub"] == attributes["sub"]
    assert body["username"] == username
    assert body["user_pool_id"] == pool.pool_id
    assert body["email"] == f"{username}@Example.com" and body["email_verified"] is True
    assert body["attributes"]["sub"] == attributes["sub"]
    assert body["invitation"] == "42"
    assert message["MessageAttributes"]["version"]["StringValue"] == "1"
    assert message["MessageAttributes"]["sub"]["StringValue"] == attributes["sub"]


def test_a_retried_trigger_is_deduplicated_on_the_fifo_queue(lambda_env, moto, pool):
    event = post_confirmation(pool, confirmed(pool))
    trigger.handler(copy.deepcopy(event), Context())
    trigger.handler(copy.deepcopy(event), Context())
    assert len(drain(moto, lambda_env.url)) == 1


def test_a_standard_queue_gets_the_message_with_its_attributes(monkeypatch, moto, pool):
    standard = create_queues(moto, fifo=False)
    monkeypatch.setenv("SIGNUP_QUEUE_URL", standard.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", moto.url)
    monkeypatch.setattr(trigger, "_sqs", None)
    trigger.handler(post_confirmation(pool, confirmed(pool)), Context())
    (message,) = drain(moto, standard.url)
    assert message["MessageAttributes"]["type"]["StringValue"] == "cargohold.signup"


def test_a_forgotten_password_confirmation_publishes_nothing(lambda_env, moto, pool):
    event = post_confirmation(pool, confirmed(pool))
    event["triggerSource"] = "PostConfirmation_ConfirmForgotPassword"
    assert trigger.handler(copy.deepcopy(event), Context()) == event
    assert drain(moto, lambda_env.url) == []


@pytest.mark.parametrize(
    "spoil",
    [
        lambda e: e.pop("request"),
        lambda e: e["request"]["userAttributes"].pop("sub"),
        lambda e: e["request"].update(userAttributes=["sub"]),
        lambda e: e.update(userName=""),
        lambda e: e.pop("userPoolId"),
        lambda e: e["request"].update(clientMetadata="invitation"),
    ],
)
def test_a_malformed_event_is_refused_and_publishes_nothing(lambda_env, moto, pool, spoil):
    event = post_confirmation(pool, confirmed(pool))
    spoil(event)
    with pytest.raises(trigger.InvalidEvent):
        trigger.handler(event, Context())
    assert drain(moto, lambda_env.url) == []


class LambdaTime:
    """The trigger's time, passing only as the trigger spends it: each SQS attempt takes
    `attempt_ms`, each back-off what it sleeps. How busy the machine is does not enter, so the
    deadline arithmetic is tested exactly."""

    def __init__(self, attempt_ms: int) -> None:
        self.now, self.attempt_ms = 0.0, attempt_ms
        self.left_at_attempts: list[int] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def on(self, monkeypatch, sqs, context: Context) -> None:
        """Charge every request the client sends, and let the back-off sleep in this time."""

        def attempt(**_kwargs) -> None:
            self.left_at_attempts.append(context.get_remaining_time_in_millis())
            self.now += self.attempt_ms / 1000

        sqs.meta.events.register("before-send.sqs.SendMessage", attempt)
        monkeypatch.setattr(trigger, "pause", self.sleep)


@pytest.fixture
def through(monkeypatch, queues):
    """The trigger's SQS client going through a proxy that fails its first `failures` requests."""
    proxies = []

    def make(moto, failures: int):
        proxies.append(FlakyProxy(moto.url, failures=failures))
        monkeypatch.setenv("SIGNUP_QUEUE_URL", queues.url)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", proxies[-1].url)
        return proxies[-1], trigger.sqs_client()

    yield make
    for proxy in proxies:
        proxy.close()


def test_transient_sqs_errors_are_retried_within_the_time_limit(
    monkeypatch, moto, pool, queues, through
):
    event = post_confirmation(pool, confirmed(pool))
    proxy, sqs = through(moto, failures=2)
    lambda_time = LambdaTime(attempt_ms=100)  # a 503 comes back quickly
    context = Context(5000, clock=lambda_time.clock)
    lambda_time.on(monkeypatch, sqs, context)
    trigger.handler(event, context)
    assert proxy.requests == len(lambda_time.left_at_attempts) == 3
    assert len(drain(moto, queues.url)) == 1


# The counts hold whatever the back-off's jitter draws (at most 0.1 s, 0.2 s, 0.4 s): e.g. 4250 ms
# leaves about 2200 after one attempt, enough for a budget but not for the margin too.
@pytest.mark.parametrize(("millis", "attempts"), [(2500, 1), (4250, 1), (5000, 2), (10_000, 4)])
def test_the_trigger_gives_up_before_its_deadline(
    monkeypatch, moto, pool, through, millis, attempts
):
    event = post_confirmation(pool, confirmed(pool))
    proxy, sqs = through(moto, failures=1000)
    # Every attempt takes as long as its timeouts allow: the worst case the deadline plans for.
    lambda_time = LambdaTime(attempt_ms=trigger.ATTEMPT_BUDGET_MS)
    context = Context(millis, clock=lambda_time.clock)
    lambda_time.on(monkeypatch, sqs, context)
    with pytest.raises(ClientError):
        trigger.handler(event, context)
    assert proxy.requests == len(lambda_time.left_at_attempts) == attempts
    # Each attempt started with its whole budget left, so even the slowest one ended before the
    # runtime would kill the function mid-call, with the margin to report the error.
    assert all(left >= trigger.ATTEMPT_BUDGET_MS for left in lambda_time.left_at_attempts)
    assert context.get_remaining_time_in_millis() >= trigger.SAFETY_MS


def test_a_permanent_sqs_error_is_not_retried(monkeypatch, moto, pool):
    proxy = FlakyProxy(moto.url, failures=0)
    try:
        missing = moto.url + "/123456789012/no-such-queue.fifo"
        monkeypatch.setenv("SIGNUP_QUEUE_URL", missing)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", proxy.url)
        monkeypatch.setattr(trigger, "_sqs", None)
        with pytest.raises(ClientError):
            trigger.handler(post_confirmation(pool, confirmed(pool)), Context())
        assert proxy.requests == 1
    finally:
        proxy.close()


def test_pre_sign_up_checks_the_email_domain_and_the_username(monkeypatch, pool):
    monkeypatch.setenv("ALLOWED_EMAIL_DOMAINS", "example.com, @corp.example")
    ok = pre_sign_up(pool, "newcomer", "Someone@EXAMPLE.com")
    assert trigger.handler(copy.deepcopy(ok), Context()) == ok
    assert trigger.handler(pre_sign_up(pool, "n2", "a@corp.example"), Context())
    with pytest.raises(trigger.InvalidEvent, match="domain"):
        trigger.handler(pre_sign_up(pool, "newcomer", "someone@example.org"), Context())
    with pytest.raises(trigger.InvalidEvent, match="domain"):
        trigger.handler(pre_sign_up(pool, "newcomer", "no-at-sign"), Context())
    with pytest.raises(trigger.InvalidEvent, match="'\\+'"):
        trigger.handler(pre_sign_up(pool, "acme+robot", "a@example.com"), Context())
    monkeypatch.setenv("ALLOWED_EMAIL_DOMAINS", "")
    assert trigger.handler(pre_sign_up(pool, "anyone", "a@anywhere.test"), Context())


def test_the_trigger_logs_json_lines(lambda_env, pool, capsys):
    trigger.handler(post_confirmation(pool, confirmed(pool)), Context())
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert lines and lines[-1]["message"] == "sign-up published"
    assert {"time", "level", "sub", "message_id"} <= set(lines[-1])


def test_make_lambda_builds_the_same_zip_twice(tmp_path):
    outputs = []
    for name in ("a.zip", "b.zip"):
        target = tmp_path / name
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "build_lambda.py"), str(target)], check=True
        )
        outputs.append(target)
    digests = {hashlib.sha256(p.read_bytes()).hexdigest() for p in outputs}
    assert len(digests) == 1
    with zipfile.ZipFile(outputs[0]) as zf:
        names = zf.namelist()
        assert names == sorted(names)
        assert "lambda_signup/handler.py" in names
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        # The handler Terraform names is the one in the zip.
        assert "def handler(" in zf.read("lambda_signup/handler.py").decode()
