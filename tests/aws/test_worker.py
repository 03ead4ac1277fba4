"""The sign-up worker against SQS in moto: sign-ups published by the real trigger become users,
idempotently; poison goes to the dead-letter queue; SIGTERM loses nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from app.access import tenancy
from app.access.policy import find_registry
from app.models import Invitation, Membership, Organisation, User, db
from lambda_signup import handler as trigger
from tests.aws.signup_events import Context
from tests.support.moto import CREDENTIALS, create_queues
from tests.support.server import ROOT, complete_lines, free_port
from worker import metrics
from worker.consumer import Worker

PASSWORD = "Corr3ct-horse-battery"


def sign_up_event(pool, username: str | None = None, invitation: int | None = None) -> dict:
    """A PostConfirmation event for a made-up user of the pool (the worker never asks Cognito
    about them, so they need not exist there)."""
    username = username or f"user{uuid.uuid4().hex[:8]}"
    return {
        "version": "1",
        "region": "us-east-1",
        "userPoolId": pool.pool_id,
        "userName": username,
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": pool.client_id},
        "triggerSource": "PostConfirmation_ConfirmSignUp",
        "request": {
            "userAttributes": {
                "sub": str(uuid.uuid4()),
                "email": f"{username}@example.com",
                "email_verified": "true",
                "cognito:user_status": "CONFIRMED",
            },
            "clientMetadata": {"invitation": str(invitation)} if invitation else {},
        },
        "response": {},
    }


def publish(moto, queue_url: str, event: dict) -> dict:
    """What the trigger publishes for the event (the trigger's own code does it)."""
    message = trigger.signup_message(event)
    trigger.publish(moto.client("sqs"), queue_url, message, Context())
    return message


def make_worker(app, moto, queues, **options) -> Worker:
    options = {"wait": 0, "retry_delay": 0, "visibility": 30, **options}
    return Worker(app, moto.client("sqs"), queues.url, **options)


def queue_depth(moto, url: str) -> int:
    attrs = moto.client("sqs").get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"]
    )


def users_with(sub: str) -> list[User]:
    return list(db.session.execute(select(User).where(User.cognito_sub == sub)).scalars())


def roles_of(user: User) -> dict[str, str]:
    rows = db.session.execute(
        select(Organisation.name, Membership.role)
        .join(Membership, Membership.organisation_id == Organisation.id)
        .where(Membership.user_id == user.id)
    )
    return dict(rows.all())


def test_a_published_sign_up_becomes_a_user_with_a_personal_organisation(app, moto, pool, queues):
    message = publish(moto, queues.url, sign_up_event(pool))
    assert make_worker(app, moto, queues).poll() == 1
    (user,) = users_with(message["sub"])
    assert user.username == message["username"]
    assert user.email == message["email"] and user.password_hash is None
    assert not user.is_site_admin and not user.is_robot
    org = user.username.lower()
    assert roles_of(user) == {org: "admin"}
    assert find_registry(org, "main") is not None
    assert queue_depth(moto, queues.url) == 0  # deleted once committed


def test_the_same_message_twice_makes_one_user(app, moto, pool):
    standard = create_queues(moto, fifo=False)  # no deduplication: the worker must cope
    event = sign_up_event(pool)
    first = publish(moto, standard.url, event)
    publish(moto, standard.url, event)
    worker = make_worker(app, moto, standard)
    while worker.poll():
        pass
    (user,) = users_with(first["sub"])
    assert roles_of(user) == {user.username.lower(): "admin"}
    assert db.session.scalar(select(func.count()).select_from(Organisation)) == 1
    assert queue_depth(moto, standard.url) == 0
    # And once more, long after: still one user, one organisation.
    publish(moto, standard.url, {**event, "triggerSource": "PostConfirmation_ConfirmSignUp"})
    worker.poll()
    assert len(users_with(first["sub"])) == 1
    assert db.session.scalar(select(func.count()).select_from(Organisation)) == 1


def test_an_invitation_named_in_the_sign_up_is_accepted(app, moto, pool, queues):
    owner = tenancy.create_user("owner", "owner-password-1")
    tenancy.create_org("team", owner)
    event = sign_up_event(pool)
    email = event["request"]["userAttributes"]["email"]
    invitation = tenancy.invite("team", email, "writer", owner)
    db.session.commit()  # the worker reads in a session of its own
    event["request"]["clientMetadata"] = {"invitation": str(invitation.id)}
    message = publish(moto, queues.url, event)
    make_worker(app, moto, queues).poll()
    (user,) = users_with(message["sub"])
    # Invited: no personal organisation with the default "uninvited".
    assert roles_of(user) == {"team": "writer"}
    db.session.expire_all()  # the worker ran in an app context (and session) of its own
    assert db.session.get(Invitation, invitation.id).state == "accepted"


def test_an_invitation_for_someone_else_is_not_accepted(app, moto, pool, queues):
    owner = tenancy.create_user("owner", "owner-password-1")
    tenancy.create_org("team", owner)
    invitation = tenancy.invite("team", "someone-else@example.com", "admin", owner)
    db.session.commit()  # the worker reads in a session of its own
    message = publish(moto, queues.url, sign_up_event(pool, invitation=invitation.id))
    make_worker(app, moto, queues).poll()
    (user,) = users_with(message["sub"])
    assert roles_of(user) == {user.username.lower(): "admin"}
    db.session.expire_all()
    assert db.session.get(Invitation, invitation.id).state == "pending"


def test_personal_organisations_follow_the_setting(make_app, moto, pool, queues):
    app = make_app(signup_personal_org="never")
    message = publish(moto, queues.url, sign_up_event(pool))
    make_worker(app, moto, queues).poll()
    (user,) = users_with(message["sub"])
    assert roles_of(user) == {}


def test_a_taken_organisation_name_gets_a_suffix(app, moto, pool, queues):
    other = tenancy.create_user("other", "other-password-1")
    tenancy.create_org("dora", other)
    db.session.commit()  # the worker reads in a session of its own
    message = publish(moto, queues.url, sign_up_event(pool, username="Dora"))
    make_worker(app, moto, queues).poll()
    (user,) = users_with(message["sub"])
    (name,) = roles_of(user)
    assert name.startswith("dora-") and name != "dora"
    assert name == f"dora-{message['sub'].replace('-', '')[:8]}"


def test_poison_messages_go_to_the_dead_letter_queue_after_the_redrive_count(
    app, moto, pool, queues
):
    sqs = moto.client("sqs")
    tenancy.create_user("taken", "local-password-1")
    db.session.commit()  # the worker reads in a session of its own
    bodies = [
        "not json at all",
        json.dumps({"type": "cargohold.signup", "version": 99, "sub": "x"}),
        json.dumps({**trigger.signup_message(sign_up_event(pool)), "user_pool_id": "other"}),
        # A pool account whose name belongs to a local account: never linked to it.
        json.dumps(trigger.signup_message(sign_up_event(pool, username="taken"))),
    ]
    for i, body in enumerate(bodies):
        sqs.send_message(
            QueueUrl=queues.url,
            MessageBody=body,
            MessageGroupId=f"g{i}",
            MessageDeduplicationId=uuid.uuid4().hex,
        )
    good = publish(moto, queues.url, sign_up_event(pool))
    worker = make_worker(app, moto, queues)
    receives: dict[str, int] = {}
    worker.after = None
    original = worker.handle

    def counting(message):
        receives[message["Body"]] = receives.get(message["Body"], 0) + 1
        return original(message)

    worker.handle = counting
    for _ in range(queues.max_receives + 2):
        worker.poll()
    assert queue_depth(moto, queues.url) == 0
    dead = []
    while batch := sqs.receive_message(
        QueueUrl=queues.dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=0
    ).get("Messages", []):
        dead += [m["Body"] for m in batch]
    assert sorted(dead) == sorted(bodies)
    # Each was tried exactly the redrive count, never deleted by the worker.
    assert all(receives[b] == queues.max_receives for b in bodies)
    assert len(users_with(good["sub"])) == 1
    # The local "taken" and the good sign-up; no poison made anyone.
    assert db.session.scalar(select(func.count()).select_from(User)) == 2


def test_sigterm_in_the_middle_of_a_batch_loses_nothing(app, moto, pool, queues):
    messages = [publish(moto, queues.url, sign_up_event(pool)) for _ in range(6)]
    done: list[str] = []
    received_in_batch: list[int] = []

    def after(message):
        done.append(message["MessageId"])
        if len(done) == 1:
            os.kill(os.getpid(), signal.SIGTERM)  # as ECS stops a task

    worker = make_worker(app, moto, queues, after=after)
    original_poll = worker.poll

    def poll():
        n = original_poll()
        received_in_batch.append(n)
        return n

    worker.poll = poll
    previous = worker.install_signal_handlers()
    try:
        worker.run()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    assert worker.stopping.is_set()
    # It stopped after one batch, and finished that batch although asked to stop mid-way.
    assert len(received_in_batch) == 1 and received_in_batch[0] > 1
    assert len(done) == received_in_batch[0]
    made = [m for m in messages if users_with(m["sub"])]
    assert len(made) == len(done)
    # Nothing lost: what the batch did not take is still queued, and a new worker finishes it.
    assert queue_depth(moto, queues.url) == len(messages) - len(done)
    rest = make_worker(app, moto, queues)
    while rest.poll():
        pass
    assert all(len(users_with(m["sub"])) == 1 for m in messages)


def test_slow_work_keeps_its_message_hidden(app, moto, pool, queues):
    message = publish(moto, queues.url, sign_up_event(pool))
    seen_meanwhile: list[int] = []

    def before(_message):
        # Longer than the visibility timeout: only the heartbeats keep it hidden (every 2 s, so
        # a stall of up to 4 s on a loaded machine is still covered).
        time.sleep(13)
        answer = moto.client("sqs").receive_message(
            QueueUrl=queues.url, MaxNumberOfMessages=10, WaitTimeSeconds=0
        )
        seen_meanwhile.append(len(answer.get("Messages", [])))

    extended = metric("cargohold_worker_visibility_extensions_total", outcome="extended")
    make_worker(app, moto, queues, visibility=6, before=before).poll()
    assert seen_meanwhile == [0]
    assert metric("cargohold_worker_visibility_extensions_total", outcome="extended") > extended
    assert len(users_with(message["sub"])) == 1
    assert queue_depth(moto, queues.url) == 0


def worker_environment(app, moto, pool, queues, **extra: str) -> dict[str, str]:
    """What `python -m worker` needs to consume the test queue into the test database."""
    settings = app.extensions["cargohold.settings"]
    return {
        **os.environ,
        **CREDENTIALS,
        "CARGOHOLD_DATA_DIR": str(settings.data_dir),
        "CARGOHOLD_DATABASE_URL": settings.database_url,
        "CARGOHOLD_IDENTITY": "cognito",
        "CARGOHOLD_COGNITO_USER_POOL_ID": pool.pool_id,
        "CARGOHOLD_COGNITO_CLIENT_ID": pool.client_id,
        "CARGOHOLD_COGNITO_ENDPOINT": moto.url,
        "CARGOHOLD_SIGNUP_QUEUE_URL": queues.url,
        "CARGOHOLD_SQS_ENDPOINT": moto.url,
        "CARGOHOLD_WORKER_WAIT": "1",
        "CARGOHOLD_LOG_FORMAT": "json",
        **extra,
    }


def test_python_m_worker_consumes_and_exits_cleanly_on_sigterm(app, moto, pool, queues, tmp_path):
    message = publish(moto, queues.url, sign_up_event(pool))
    env = worker_environment(app, moto, pool, queues)
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    try:
        lines = wait_for_log(log_path, "sign-up applied", proc)
        applied = [line for line in lines if line.get("message") == "sign-up applied"]
        assert applied[0]["sub"] == message["sub"]
        assert applied[0]["user"] == message["username"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert lines[-1]["message"] == "stopped"
    db.session.expire_all()
    assert len(users_with(message["sub"])) == 1


def wait_for_log(path, text: str, proc, timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = []
        for line in complete_lines(path):
            try:
                lines.append(json.loads(line))
            except ValueError:
                pytest.fail(f"not a JSON log line: {line}")
        if any(entry.get("message") == text for entry in lines):
            return lines
        if proc.poll() is not None:
            pytest.fail(f"the worker exited {proc.returncode}: {path.read_text()[-2000:]}")
        time.sleep(0.2)
    pytest.fail(f"no {text!r} in the worker's log: {path.read_text()[-2000:]}")


def metric(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def test_the_worker_counts_what_it_received_applied_failed_and_deleted(app, moto, pool, queues):
    names = {
        "received": ("cargohold_worker_messages_received_total", {}),
        "applied": ("cargohold_worker_messages_applied_total", {}),
        "deleted": ("cargohold_worker_messages_deleted_total", {}),
        "poison": ("cargohold_worker_messages_failed_total", {"reason": "poison"}),
        "retry": ("cargohold_worker_messages_failed_total", {"reason": "retry"}),
        "batches": ("cargohold_worker_batch_duration_seconds_count", {}),
    }
    before = {key: metric(name, **labels) for key, (name, labels) in names.items()}
    good = publish(moto, queues.url, sign_up_event(pool))
    moto.client("sqs").send_message(
        QueueUrl=queues.url,
        MessageBody="not json at all",
        MessageGroupId="poison",
        MessageDeduplicationId=uuid.uuid4().hex,
    )
    polled_since = time.time()
    assert make_worker(app, moto, queues).poll() == 2
    assert len(users_with(good["sub"])) == 1
    moved = {key: metric(name, **labels) - before[key] for key, (name, labels) in names.items()}
    assert moved == {
        "received": 2,
        "applied": 1,
        "deleted": 1,
        "poison": 1,
        "retry": 0,
        "batches": 1,
    }
    assert metric("cargohold_worker_last_successful_poll_timestamp_seconds") >= int(polled_since)


def test_python_m_worker_serves_its_metrics_on_the_configured_port(
    app, moto, pool, queues, tmp_path
):
    message = publish(moto, queues.url, sign_up_event(pool))
    port = free_port()
    env = worker_environment(app, moto, pool, queues, CARGOHOLD_WORKER_METRICS_PORT=str(port))
    log_path = tmp_path / "worker.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "worker"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
    try:
        lines = wait_for_log(log_path, "sign-up applied", proc)
        (served,) = [line for line in lines if line.get("message") == "metrics served"]
        assert served["host"] == "127.0.0.1" and served["port"] == port
        # The batch is timed just after its last message is logged: scrape until it is in.
        for _ in range(50):
            samples = scrape(port)
            if samples.get(("cargohold_worker_batch_duration_seconds_count", ())):
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert samples[("cargohold_worker_messages_received_total", ())] == 1
    assert samples[("cargohold_worker_messages_applied_total", ())] == 1
    assert samples[("cargohold_worker_messages_deleted_total", ())] == 1
    assert samples[("cargohold_worker_messages_failed_total", (("reason", "poison"),))] == 0
    assert samples[("cargohold_worker_batch_duration_seconds_count", ())] == 1
    assert samples[("cargohold_worker_last_successful_poll_timestamp_seconds", ())] > 0
    # Only the worker's own metrics: the app's HTTP families are not on this scrape.
    assert not any(name.startswith("cargohold_http_") for name, _ in samples)
    assert len(users_with(message["sub"])) == 1


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain")
        text = answer.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
