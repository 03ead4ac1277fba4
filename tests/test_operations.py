"""Operations: health and readiness probes, Prometheus metrics over several workers, JSON access
logs with request ids, bytes sent by sendfile, the trusted-proxy setting, and migrations that
replicas starting together apply once."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from tests.support.client import OCIClient
from tests.support.server import BIN, ROOT, Server, child_pids, complete_lines, make_server
from tests.support.services import Services, require_services, unique_prefix

MiB = 1024 * 1024


def start(tmp_path: Path, workers: int = 2, **env: str) -> Server:
    srv = make_server(tmp_path, extra_env=env)
    srv.start(workers=workers)
    return srv


@pytest.fixture
def server_factory(tmp_path_factory):
    made: list[Server] = []

    def make(workers: int = 2, **env: str) -> Server:
        srv = start(tmp_path_factory.mktemp("ops"), workers, **env)
        made.append(srv)
        return srv

    yield make
    for srv in made:
        srv.stop()


def access_records(srv: Server) -> list[dict]:
    """The JSON access records the server has written so far."""
    out = []
    for line in complete_lines(srv.log_path):
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("logger") == "cargohold.access":
                out.append(record)
    return out


def wait_for_record(srv: Server, request_id: str, status: int | None = None) -> dict:
    """The access record of a request (of its answer with this status: a client retrying after
    a 401 challenge sends the same id twice)."""
    # The record is written when the server closes the response, just after the client has it.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        for record in access_records(srv):
            if record["request_id"] == request_id and status in (None, record["status"]):
                return record
        time.sleep(0.05)
    raise AssertionError(f"no access record for {request_id}")


def scrape_until(srv: Server, check) -> dict[str, float]:
    """The metrics once `check` passes on them: a request is counted when the server closes
    its response, just after the client has it."""
    deadline = time.monotonic() + 10
    while True:
        m = scrape(srv)
        try:
            check(m)
            return m
        except (AssertionError, KeyError):
            if time.monotonic() > deadline:
                raise
        time.sleep(0.05)


def scrape(srv: Server, **kwargs) -> dict[str, float]:
    r = requests.get(f"{srv.url}/metrics", **kwargs)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    samples = {}
    for line in r.text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


# ---- health and readiness ----------------------------------------------------------------------


def test_healthz_and_readyz_on_the_embedded_backend(server_factory):
    srv = server_factory()
    r = requests.get(f"{srv.url}/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    r = requests.get(f"{srv.url}/readyz")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "status": "ready",
        "checks": {"database": "ok", "storage": "ok", "migrations": "ok"},
    }


def test_readyz_refuses_a_schema_behind_the_code(server_factory):
    srv = server_factory()
    (head,) = srv.sql("SELECT version_num FROM alembic_version")[0]
    srv.sql("UPDATE alembic_version SET version_num = ?", "fce862eb98ea")
    try:
        r = requests.get(f"{srv.url}/readyz")
        assert r.status_code == 503
        body = r.json()
        assert body["status"] == "unavailable"
        assert body["checks"]["migrations"].startswith("schema at fce862eb98ea")
        assert body["checks"]["database"] == "ok"
        # Liveness does not depend on it: the process is fine, it is just not ready.
        assert requests.get(f"{srv.url}/healthz").status_code == 200
    finally:
        srv.sql("UPDATE alembic_version SET version_num = ?", head)
    assert requests.get(f"{srv.url}/readyz").status_code == 200


def test_readyz_refuses_a_missing_storage_folder(server_factory):
    srv = server_factory()
    storage = srv.data_dir / "storage"
    storage.rename(srv.data_dir / "storage-away")
    try:
        r = requests.get(f"{srv.url}/readyz")
        assert r.status_code == 503
        assert r.json()["checks"]["storage"].startswith("unreachable")
    finally:
        (srv.data_dir / "storage-away").rename(storage)
    assert requests.get(f"{srv.url}/readyz").status_code == 200


@pytest.fixture
def services() -> Services:
    return require_services()


def test_readyz_follows_postgres_and_s3_outages(services, tmp_path):
    url, prefix = services.create_database(), unique_prefix()
    srv = make_server(tmp_path, extra_env=services.server_env(url, prefix))
    srv.start()
    name = url.rsplit("/", 1)[1]
    try:
        assert requests.get(f"{srv.url}/readyz").status_code == 200
        # The database refuses new connections and drops the server's current ones.
        with services._admin() as conn:
            conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            conn.execute(
                # Waits (up to 10 s) for each session to end: a signalled one still answers.
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
        try:
            r = requests.get(f"{srv.url}/readyz")
            assert r.status_code == 503, r.text
            assert r.json()["checks"]["database"].startswith("unreachable")
            assert r.json()["checks"]["storage"] == "ok"
            assert requests.get(f"{srv.url}/healthz").status_code == 200
            # A request that needs the database fails as a retryable 503, and is counted.
            r = requests.get(f"{srv.url}/v2/", auth=("alice", srv.users["alice"]))
            assert r.status_code == 503, r.text
            assert scrape(srv)["cargohold_database_errors_total"] >= 1
        finally:
            with services._admin() as conn:
                conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        assert requests.get(f"{srv.url}/readyz").status_code == 200

        subprocess.run(
            [str(ROOT / "scripts/services.sh"), "stop-s3"], check=True, capture_output=True
        )
        try:
            r = requests.get(f"{srv.url}/readyz")
            assert r.status_code == 503, r.text
            assert r.json()["checks"]["storage"].startswith("unreachable")
            assert r.json()["checks"]["database"] == "ok"
            blob = b"while the store is away"
            digest = "sha256:" + hashlib.sha256(blob).hexdigest()
            r = requests.post(
                f"{srv.url}/v2/acme/main/outage/app/blobs/uploads/?digest={digest}",
                data=blob,
                auth=("alice", srv.users["alice"]),
            )
            assert r.status_code == 503, r.text
            assert scrape(srv)['cargohold_storage_errors_total{driver="s3"}'] >= 1
        finally:
            subprocess.run(
                [str(ROOT / "scripts/services.sh"), "start"], check=True, capture_output=True
            )
        deadline = time.monotonic() + 60
        while requests.get(f"{srv.url}/readyz").status_code != 200:
            assert time.monotonic() < deadline, "not ready again after S3 came back"
            time.sleep(0.5)
    finally:
        srv.stop()
        services.drop_database(url)
        services.purge(prefix)


# ---- metrics ---------------------------------------------------------------------------------


def test_metrics_count_requests_bytes_uploads_and_login_failures(server_factory):
    srv = server_factory()
    client = OCIClient(srv.url, "alice", srv.users["alice"])
    layer = os.urandom(MiB)
    client.push_image("acme/main/metrics/app", "v1", [layer])
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    got = client.request("GET", f"/v2/acme/main/metrics/app/blobs/{digest}")
    assert got.status_code == 200 and len(got.content) == MiB
    assert requests.get(f"{srv.url}/v2/", auth=("alice", "wrong-password")).status_code == 401

    def pushed_and_pulled(m: dict[str, float]) -> None:
        assert m['cargohold_http_requests_total{code="200",method="GET",route="oci:get_blob"}'] == 1
        assert (
            m['cargohold_http_requests_total{code="201",method="PUT",route="oci:put_manifest"}']
            == 1
        )
        # Bytes both ways: the layer went in through a monolithic push and out by sendfile.
        assert m['cargohold_http_request_size_bytes_sum{route="oci:start_upload"}'] >= MiB
        # (and a 401 challenge's small body before the client fetched a token)
        assert MiB <= m['cargohold_http_response_size_bytes_sum{route="oci:get_blob"}'] < MiB + 1024
        # the first answer was the 401 that sent the client for a token
        assert (
            m['cargohold_http_request_duration_seconds_count{method="GET",route="oci:get_blob"}']
            == 2
        )
        assert m['cargohold_registry_upload_sessions_total{outcome="completed"}'] >= 2
        assert m['cargohold_auth_login_failures_total{reason="invalid"}'] == 1
        assert m["cargohold_registry_upload_sessions_open"] == 0

    m = scrape_until(srv, pushed_and_pulled)
    # Routes, never raw paths: no label carries a repository name or digest.
    assert not [k for k in m if "metrics/app" in k or "sha256" in k]

    # An upload left open is counted, then its cancellation.
    r = client.request("POST", "/v2/acme/main/metrics/app/blobs/uploads/")
    assert r.status_code == 202

    def one_open(m: dict[str, float]) -> None:
        assert m["cargohold_registry_upload_sessions_open"] == 1
        assert m['cargohold_registry_upload_sessions_total{outcome="started"}'] >= 1

    scrape_until(srv, one_open)
    assert client.request("DELETE", r.headers["Location"]).status_code == 204

    def cancelled(m: dict[str, float]) -> None:
        assert m['cargohold_registry_upload_sessions_total{outcome="cancelled"}'] == 1
        assert m["cargohold_registry_upload_sessions_open"] == 0

    scrape_until(srv, cancelled)


def test_metrics_add_up_every_worker(server_factory, tmp_path):
    metrics_dir = tmp_path / "metrics"
    srv = server_factory(workers=2, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir))
    workers = child_pids(srv.proc.pid)
    assert len(workers) == 2
    # New connections until both workers have served requests: each keeps its own files, and
    # a histogram's file appears with its first observation.
    sent = 0
    while sent < 400 and not all((metrics_dir / f"histogram_{pid}.db").exists() for pid in workers):
        with ThreadPoolExecutor(8) as pool:
            codes = list(
                pool.map(lambda _: requests.get(f"{srv.url}/healthz").status_code, range(8))
            )
        assert codes == [200] * 8
        sent += 8
    assert all((metrics_dir / f"histogram_{pid}.db").exists() for pid in workers), "one worker idle"
    # Whichever worker answers the scrape, it reports every worker's requests (once the last
    # ones are counted: a request is, when its response is closed, just after the client has it).
    key = 'cargohold_http_requests_total{code="200",method="GET",route="ops.healthz"}'

    def all_counted(m: dict[str, float]) -> None:
        assert m[key] == sent

    scrape_until(srv, all_counted)
    for _ in range(6):
        all_counted(scrape(srv))


def test_metrics_token(server_factory):
    srv = server_factory(CARGOHOLD_METRICS_TOKEN="s3cret-scrape-token")
    assert requests.get(f"{srv.url}/metrics").status_code == 401
    for wrong in ("Bearer nope", "Basic czNjcmV0LXNjcmFwZS10b2tlbg==", "Bearer s3cr\xe9t".encode()):
        r = requests.get(f"{srv.url}/metrics", headers={"Authorization": wrong})
        assert r.status_code == 401, r.text
    ok = {"Authorization": "Bearer s3cret-scrape-token"}
    assert "cargohold_http_requests_total" in str(scrape(srv, headers=ok))
    # The probes stay open to the load balancer.
    assert requests.get(f"{srv.url}/healthz").status_code == 200


# ---- logs ------------------------------------------------------------------------------------


def test_json_access_log_with_request_id_round_trip(server_factory):
    srv = server_factory(CARGOHOLD_LOG_FORMAT="json")
    client = OCIClient(srv.url, "alice", srv.users["alice"])
    digest, _ = client.push_image("acme/main/logs/app", "v1", [b"a layer"])
    r = client.request(
        "GET",
        f"/v2/acme/main/logs/app/manifests/{digest}",
        headers={
            "X-Request-ID": "lb-7f3a.42",
            "Accept": "application/vnd.oci.image.manifest.v1+json",
        },
    )
    assert r.status_code == 200
    assert r.headers["X-Request-ID"] == "lb-7f3a.42"
    record = wait_for_record(srv, "lb-7f3a.42", 200)
    assert record["route"] == "oci:get_manifest"
    assert record["status"] == 200
    assert record["user"] == "alice"
    assert record["org"] == "acme"
    assert record["repository"] == "acme/main/logs/app"
    assert record["digest"] == digest
    assert record["bytes_sent"] == len(r.content)
    assert record["method"] == "GET" and record["remote_addr"] == "127.0.0.1"
    assert record["duration_ms"] >= 0 and record["level"] == "info"

    # An id that is not a sane token is replaced by one of ours, and that one is returned.
    r = requests.get(f"{srv.url}/healthz", headers={"X-Request-ID": "bad id <script>"})
    made = r.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert wait_for_record(srv, made)["path"] == "/healthz"
    # Without one, one is made.
    assert re.fullmatch(r"[0-9a-f]{32}", requests.get(f"{srv.url}/healthz").headers["X-Request-ID"])
    # Every line the server wrote in JSON mode is one JSON object (gunicorn's own aside).
    app_lines = [line for line in complete_lines(srv.log_path) if not line.startswith("[")]
    assert app_lines and all(json.loads(line) for line in app_lines)


@pytest.mark.parametrize("sendfile", ["false", "true"])
def test_access_log_counts_bytes_sent_copied_or_by_sendfile(server_factory, sendfile):
    srv = server_factory(CARGOHOLD_LOG_FORMAT="json", CARGOHOLD_SENDFILE=sendfile)
    client = OCIClient(srv.url, "alice", srv.users["alice"])
    layer = os.urandom(3 * MiB + 17)
    client.push_image("acme/main/sendfile/app", "v1", [layer])
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    r = client.request(
        "GET", f"/v2/acme/main/sendfile/app/blobs/{digest}", headers={"X-Request-ID": "sf-1"}
    )
    assert r.status_code == 200 and r.content == layer
    record = wait_for_record(srv, "sf-1", 200)
    assert record["route"] == "oci:get_blob" and record["digest"] == digest
    assert record["bytes_sent"] == len(layer)
    # A range of the same blob: what was sent, not the blob's size.
    r = client.request(
        "GET",
        f"/v2/acme/main/sendfile/app/blobs/{digest}",
        headers={"X-Request-ID": "sf-2", "Range": "bytes=100-1123"},
    )
    assert r.status_code == 206 and r.content == layer[100:1124]
    assert wait_for_record(srv, "sf-2", 206)["bytes_sent"] == 1024
    # A range past the first pieces, to the blob's last byte.
    tail = f"bytes={2 * MiB + 5}-"
    r = client.request("GET", f"/v2/acme/main/sendfile/app/blobs/{digest}", headers={"Range": tail})
    assert r.status_code == 206 and r.content == layer[2 * MiB + 5 :]
    assert r.headers["Content-Range"] == f"bytes {2 * MiB + 5}-{len(layer) - 1}/{len(layer)}"


def test_text_access_log_is_the_default(server_factory):
    srv = server_factory()
    requests.get(f"{srv.url}/healthz", headers={"X-Request-ID": "plain-1"})
    deadline = time.monotonic() + 10
    while "request_id=plain-1" not in srv.log_path.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    line = next(x for x in srv.log_path.read_text().splitlines() if "request_id=plain-1" in x)
    assert line.startswith('127.0.0.1 - - "GET /healthz HTTP/1.1" 200 16 ')


# ---- proxies ---------------------------------------------------------------------------------

FORWARDED = {
    "X-Forwarded-For": "198.51.100.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "registry.example.com",
}


def test_forwarded_headers_are_ignored_without_trusted_proxies(server_factory):
    srv = server_factory(CARGOHOLD_LOG_FORMAT="json")
    r = requests.get(f"{srv.url}/v2/", headers={**FORWARDED, "X-Request-ID": "px-0"})
    assert r.status_code == 401
    assert f'realm="{srv.url}/auth/token"' in r.headers["WWW-Authenticate"]
    assert wait_for_record(srv, "px-0")["remote_addr"] == "127.0.0.1"


def test_trusted_proxy_sets_client_address_and_urls(server_factory):
    srv = server_factory(CARGOHOLD_LOG_FORMAT="json", CARGOHOLD_TRUSTED_PROXIES="1")
    # Two hops recorded: only the one our proxy added (the last) is believed.
    headers = {**FORWARDED, "X-Forwarded-For": "6.6.6.6, 198.51.100.7", "X-Request-ID": "px-1"}
    r = requests.get(f"{srv.url}/v2/", headers=headers)
    assert r.status_code == 401
    assert 'realm="https://registry.example.com/auth/token"' in r.headers["WWW-Authenticate"]
    assert wait_for_record(srv, "px-1")["remote_addr"] == "198.51.100.7"
    # Upload locations stay paths on whatever host the client used.
    r = requests.post(
        f"{srv.url}/v2/acme/main/proxy/app/blobs/uploads/",
        auth=("alice", srv.users["alice"]),
        headers=FORWARDED,
    )
    assert r.status_code == 202 and r.headers["Location"].startswith("/v2/acme/main/proxy/app/")


def _fail_logins(srv: Server, address: str, users: list[str]) -> list[int]:
    return [
        requests.get(
            f"{srv.url}/v2/", auth=(u, "wrong-password"), headers={"X-Forwarded-For": address}
        ).status_code
        for u in users
    ]


def test_login_throttle_keys_on_the_forwarded_address(server_factory):
    limits = {
        "CARGOHOLD_LOGIN_MAX_FAILURES_PER_ADDRESS": "3",
        "CARGOHOLD_LOGIN_MAX_FAILURES": "100",
    }
    srv = server_factory(CARGOHOLD_TRUSTED_PROXIES="1", **limits)
    assert _fail_logins(srv, "203.0.113.5", ["u1", "u2", "u3", "u4"]) == [401, 401, 401, 429]
    # Another client behind the same proxy is not locked out by the first one's failures.
    assert _fail_logins(srv, "203.0.113.6", ["u5"]) == [401]
    ok = requests.get(
        f"{srv.url}/v2/", auth=("alice", srv.users["alice"]), headers={"X-Forwarded-For": "1.2.3.4"}
    )
    assert ok.status_code == 200

    # Without the setting the header is ignored: every attempt counts against the proxy's own
    # address, whatever the client claims.
    plain = server_factory(**limits)
    codes = _fail_logins(plain, "203.0.113.5", ["u1", "u2", "u3"])
    assert codes == [401, 401, 401]
    assert _fail_logins(plain, "203.0.113.99", ["u4"]) == [429]


# ---- migrations at start -------------------------------------------------------------------


def _bootstrap_together(env: dict[str, str], count: int = 4) -> list[subprocess.CompletedProcess]:
    def run(_):
        return subprocess.run(
            [str(BIN / "flask"), "bootstrap"], cwd=ROOT, env=env, capture_output=True, text=True
        )

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(run, range(count)))


def _bootstrap_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "FLASK_APP": "wsgi",
        "CARGOHOLD_DATA_DIR": str(tmp_path),
        "CARGOHOLD_ADMIN_PASSWORD": "a-long-password",
        **extra,
    }


def test_replicas_starting_together_migrate_once_on_sqlite(tmp_path):
    results = _bootstrap_together(_bootstrap_env(tmp_path))
    assert all(r.returncode == 0 for r in results), [r.stderr[-800:] for r in results]
    srv = Server(data_dir=tmp_path, port=0, admin_password="", env={})
    assert srv.sql("SELECT count(*) FROM users")[0][0] == 1
    assert srv.sql("SELECT count(*) FROM organisations")[0][0] == 1


def test_replicas_starting_together_migrate_once_on_postgres(services, tmp_path):
    url = services.create_database()
    try:
        env = _bootstrap_env(tmp_path, CARGOHOLD_DATABASE_URL=url)
        results = _bootstrap_together(env)
        assert all(r.returncode == 0 for r in results), [r.stderr[-800:] for r in results]
        # One of them ran the migrations; the others found the schema at head.
        assert sum("Running upgrade" in r.stderr for r in results) == 1
        srv = Server(
            data_dir=tmp_path, port=0, admin_password="", env={"CARGOHOLD_DATABASE_URL": url}
        )
        assert srv.sql("SELECT count(*) FROM users")[0][0] == 1
    finally:
        services.drop_database(url)
