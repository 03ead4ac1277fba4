"""AWS APIs (Cognito user pools, SQS) from moto, run as a real HTTP server on loopback."""

from __future__ import annotations

import base64
import hmac
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import boto3
import requests

from tests.support.server import free_port

REGION = "us-east-1"
# moto accepts any credentials; these keep boto3 from looking for real ones.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": REGION,
}


def moto_binary() -> str:
    local = Path(sys.executable).parent / "moto_server"
    return str(local) if local.exists() else (shutil.which("moto_server") or "moto_server")


@dataclass
class Moto:
    url: str
    proc: subprocess.Popen
    log_path: Path

    def client(self, service: str):
        return boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION
        ).client(service, endpoint_url=self.url)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_moto(folder: Path) -> Moto:
    port = free_port()
    log_path = folder / "moto.log"
    log = open(log_path, "ab")  # noqa: SIM115 - the child process owns it
    proc = subprocess.Popen(
        [moto_binary(), "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, **CREDENTIALS},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"moto_server exited: {log_path.read_text()[-2000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                pass
            requests.get(f"{url}/moto-api/", timeout=5)
            return Moto(url, proc, log_path)
        except (OSError, requests.RequestException):
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto_server did not start within 60s")


@dataclass(frozen=True)
class Pool:
    """A user pool and its app client, as the Terraform tree makes them."""

    moto: Moto
    pool_id: str
    client_id: str
    client_secret: str
    admin_group: str = "cargohold-admins"

    @property
    def cognito(self):
        return self.moto.client("cognito-idp")

    def secret_hash(self, username: str) -> str:
        mac = hmac.new(self.client_secret.encode(), (username + self.client_id).encode(), "sha256")
        return base64.b64encode(mac.digest()).decode()

    def sign_up(self, username: str, password: str, email: str) -> str:
        """Sign a user up and confirm them, as the hosted UI and an administrator would;
        returns their `sub`."""
        answer = self.cognito.sign_up(
            ClientId=self.client_id,
            SecretHash=self.secret_hash(username),
            Username=username,
            Password=password,
            UserAttributes=[{"Name": "email", "Value": email}],
        )
        self.cognito.admin_confirm_sign_up(UserPoolId=self.pool_id, Username=username)
        self.cognito.admin_update_user_attributes(
            UserPoolId=self.pool_id,
            Username=username,
            UserAttributes=[{"Name": "email_verified", "Value": "true"}],
        )
        return answer["UserSub"]

    def attributes(self, username: str) -> dict[str, str]:
        user = self.cognito.admin_get_user(UserPoolId=self.pool_id, Username=username)
        return {a["Name"]: a["Value"] for a in user["UserAttributes"]}

    def tokens(self, username: str, password: str) -> dict:
        return self.cognito.initiate_auth(
            ClientId=self.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={
                "USERNAME": username,
                "PASSWORD": password,
                "SECRET_HASH": self.secret_hash(username),
            },
        )["AuthenticationResult"]

    def server_env(self) -> dict[str, str]:
        """What a Cargohold needs to use this pool."""
        return {
            **CREDENTIALS,
            "CARGOHOLD_IDENTITY": "cognito",
            "CARGOHOLD_COGNITO_USER_POOL_ID": self.pool_id,
            "CARGOHOLD_COGNITO_CLIENT_ID": self.client_id,
            "CARGOHOLD_COGNITO_CLIENT_SECRET": self.client_secret,
            "CARGOHOLD_COGNITO_REGION": REGION,
            "CARGOHOLD_COGNITO_ENDPOINT": self.moto.url,
            "CARGOHOLD_COGNITO_ADMIN_GROUP": self.admin_group,
        }


def create_pool(moto: Moto, name: str | None = None) -> Pool:
    cognito = moto.client("cognito-idp")
    pool = cognito.create_user_pool(
        PoolName=name or f"cargohold-{uuid.uuid4().hex[:8]}",
        AutoVerifiedAttributes=["email"],
        UsernameConfiguration={"CaseSensitive": False},
    )["UserPool"]
    client = cognito.create_user_pool_client(
        UserPoolId=pool["Id"],
        ClientName="cargohold",
        GenerateSecret=True,
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
        ReadAttributes=["email", "email_verified"],
    )["UserPoolClient"]
    made = Pool(moto, pool["Id"], client["ClientId"], client["ClientSecret"])
    cognito.create_group(GroupName=made.admin_group, UserPoolId=pool["Id"])
    return made


@dataclass(frozen=True)
class Queues:
    url: str
    dlq_url: str
    max_receives: int


def create_queues(moto: Moto, max_receives: int = 3, fifo: bool = True) -> Queues:
    sqs = moto.client("sqs")
    name = f"signup-{uuid.uuid4().hex[:8]}"
    suffix = ".fifo" if fifo else ""
    fifo_attrs = {"FifoQueue": "true"} if fifo else {}
    dlq = sqs.create_queue(QueueName=f"{name}-dlq{suffix}", Attributes=fifo_attrs)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName=f"{name}{suffix}",
        Attributes={
            **fifo_attrs,
            "VisibilityTimeout": "30",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}
            ),
        },
    )["QueueUrl"]
    return Queues(url, dlq, max_receives)


class FlakyProxy:
    """An HTTP proxy in front of moto that answers the first `failures` requests with 503, as an
    AWS endpoint having a bad moment does, then forwards the rest."""

    def __init__(self, target: str, failures: int) -> None:
        import http.client
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import urlparse

        self.failures, self.requests = failures, 0
        upstream = urlparse(target)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                owner.requests += 1
                if owner.requests <= owner.failures:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request("POST", self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                self.send_response(resp.status)
                for name, value in resp.getheaders():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            def log_message(self, *_args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
