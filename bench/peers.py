"""The systems under test, each started on a free loopback port with its storage in the run's
work folder (the same disk as the checkout): Cargohold, CNCF Distribution, pypiserver, devpi, and
nginx serving the test file as the static-file baseline.

Every process started here is registered, and `stop_all()` (also run at exit and on SIGTERM)
ends what is still running, so a failed run leaves nothing behind.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from bench.common import CACHE, ROOT, process_tree

PEERS_BIN = CACHE / "peers" / "bin"
_started: list[subprocess.Popen] = []


def _kill_tree(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    pids = process_tree(proc.pid)
    try:
        # Peers run in a session of their own; ending the group ends their workers too.
        os.killpg(proc.pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()


def stop_all() -> None:
    while _started:
        _kill_tree(_started.pop())


def _on_signal(signum: int, _frame: object) -> None:
    # Unwind through every `finally`, then atexit ends the processes.
    raise SystemExit(128 + signum)


atexit.register(stop_all)
signal.signal(signal.SIGTERM, _on_signal)
signal.signal(signal.SIGHUP, _on_signal)


def spawn(args: list[str], log: Path, **kwargs) -> subprocess.Popen:
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            **kwargs,
        )
    _started.append(proc)
    return proc


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with {proc.returncode}: {log.read_text()[-1500:]}")
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"no answer from {url} within {timeout:.0f}s")


def free_port() -> int:
    from tests.support.server import free_port as _free_port

    return _free_port()


@dataclass
class Service:
    name: str
    url: str
    proc: subprocess.Popen | None
    workdir: Path
    version: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    # Services measured with this one, as one system (the replicas behind a proxy).
    behind: list[Service] = field(default_factory=list)

    @property
    def pid(self) -> int | tuple[int, ...] | None:
        own = self.proc.pid if self.proc and self.proc.poll() is None else None
        if not self.behind or own is None:
            return own
        return (own, *(p for s in self.behind if isinstance(p := s.pid, int)))

    def stop(self) -> None:
        if self.proc is not None:
            _kill_tree(self.proc)
            if self.proc in _started:
                _started.remove(self.proc)


def _version(args: list[str]) -> str:
    """The first version number a program prints about itself."""
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    m = re.search(r"\d+\.\d+(?:\.\d+)?", out.stdout + out.stderr)
    return m.group(0) if m else "unknown"


# ---- nginx ----------------------------------------------------------------------------------


def _run_nginx(workdir: Path, connections: int, http: str, probe: str) -> Service:
    """nginx in the foreground on a free port, everything it writes under `workdir`; `http`
    is the body of its `http` block, with `{port}` where it listens."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    temp = workdir / "temp"
    temp.mkdir(exist_ok=True)
    conf = workdir / "nginx.conf"
    conf.write_text(
        f"""daemon off;
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/error.log warn;
events {{ worker_connections {connections}; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
{http.replace("{port}", str(port))}}}
"""
    )
    log = workdir / "nginx.log"
    proc = spawn(["nginx", "-e", str(workdir / "error.log"), "-c", str(conf)], log)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + probe, proc, log)
    return Service("nginx", url, proc, workdir, _version(["nginx", "-v"]))


def start_nginx(workdir: Path, root: Path) -> Service:
    http = f"""    sendfile on;
    types {{ }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{{port}};
        root {root};
    }}
"""
    return _run_nginx(workdir, 256, http, "/")


def start_nginx_proxy(workdir: Path, upstreams: list[str]) -> Service:
    """nginx as a small load balancer in front of Cargohold replicas: round robin, kept-alive
    upstream connections, bodies streamed both ways (no request or response buffering)."""
    servers = "".join(f"        server {u.removeprefix('http://')};\n" for u in upstreams)
    http = f"""    upstream cargohold {{
{servers}        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{{port}};
        client_max_body_size 0;
        proxy_request_buffering off;
        proxy_buffering off;
        proxy_read_timeout 300s;
        proxy_send_timeout 300s;
        location / {{
            proxy_pass http://cargohold;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $http_host;
            proxy_set_header X-Forwarded-For $remote_addr;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
        }}
    }}
"""
    return _run_nginx(workdir, 1024, http, "/v2/")


def start_cargohold_replicas(workdir: Path, env: dict[str, str], count: int = 2) -> Service:
    """`count` Cargohold servers on one database and one bucket behind nginx: the returned
    service is the proxy, measured together with the replicas (`Service.behind`)."""
    env = {**env, "CARGOHOLD_TRUSTED_PROXIES": "1"}
    first, server = start_cargohold(workdir / "replica0", [], extra_env=env)
    replicas = [first]
    for i in range(1, count):
        other = server.replica()
        other.start()
        _started.append(other.proc)  # type: ignore[arg-type]
        replicas.append(Service(f"cargohold-{i}", other.url, other.proc, workdir, first.version))
    proxy = start_nginx_proxy(workdir / "nginx", [r.url for r in replicas])
    proxy.extra.update(first.extra)
    proxy.behind = replicas
    return proxy


# ---- CNCF Distribution ------------------------------------------------------------------------


def start_distribution(workdir: Path) -> Service:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    storage = workdir / "storage"
    storage.mkdir(exist_ok=True)
    conf = workdir / "config.yml"
    # Distribution's packaged defaults, less auth and the access log, on a loopback port.
    # Cargohold writes its access log all the same (0.03-0.05 ms a request, docs/benchmarks.md):
    # the comparison leaves that cost on Cargohold's side.
    conf.write_text(
        f"""version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: 127.0.0.1:{port}
  headers:
    X-Content-Type-Options: [nosniff]
"""
    )
    log = workdir / "registry.log"
    proc = spawn(["docker-registry", "serve", str(conf)], log)
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/v2/", proc, log)
    return Service("distribution", url, proc, workdir, _version(["docker-registry", "--version"]))


# ---- Cargohold ------------------------------------------------------------------------------


def start_cargohold(
    workdir: Path, extra_registries: list[str], extra_env: dict[str, str] | None = None
) -> tuple[Service, object]:
    """gunicorn as tests/support/server.py starts it (2 gthread workers x 8 threads), embedded
    default storage (SQLite + filesystem), the seeded tenants. Before it starts: public
    registries `extra_registries` in acme, for runs that each need an empty one, and an access
    token for alice, which clients send as their password, as CI does: an HMAC check instead of
    argon2 on every request that carries Basic credentials."""
    from tests.support.server import make_server

    workdir.mkdir(parents=True, exist_ok=True)
    server = make_server(workdir / "data", extra_env=extra_env)
    token = _prepare_cargohold(server, extra_registries)
    server.start()
    service = Service("cargohold", server.url, server.proc, workdir, _cargohold_version())
    _started.append(server.proc)  # type: ignore[arg-type]
    service.extra.update(user="alice", password=token, admin_password=server.admin_password)
    return service, server


def _cargohold_version() -> str:
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True, text=True
        )
        return out.stdout.strip()
    except OSError:
        return "unknown"


def _prepare_cargohold(server, registries: list[str]) -> str:
    from app.access import access_tokens, tenancy
    from app.models.transaction import unit_of_work

    with server.app().app_context(), unit_of_work():
        for name in registries:
            tenancy.create_registry("acme", name, public=True)
        _, secret = access_tokens.create(tenancy.find_user("alice"), "bench")
        return secret


# ---- pypiserver -----------------------------------------------------------------------------


def start_pypiserver(workdir: Path) -> Service:
    workdir.mkdir(parents=True, exist_ok=True)
    packages = workdir / "packages"
    packages.mkdir(exist_ok=True)
    port = free_port()
    log = workdir / "pypiserver.log"
    proc = spawn(
        [
            str(PEERS_BIN / "pypi-server"),
            "run",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            # Upload without credentials: the documented way to run it with no auth.
            "-a",
            ".",
            "-P",
            ".",
            # Never send a client to pypi.org for what it lacks: the bench must stay local.
            "--disable-fallback",
            "--log-stream",
            "none",
            str(packages),
        ],
        log,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/simple/", proc, log)
    service = Service(
        "pypiserver",
        url,
        proc,
        workdir,
        _version([str(PEERS_BIN / "pypi-server"), "--version"]),
    )
    service.extra.update(
        simple=url + "/simple/", upload=url + "/", packages=str(packages), user="", password=""
    )
    return service


# ---- devpi ----------------------------------------------------------------------------------

DEVPI_USER = "bench"
DEVPI_PASSWORD = "bench-password"


def start_devpi(workdir: Path, indexes: list[str]) -> Service:
    """devpi-server with no root/pypi mirror (nothing may leave the machine), one user, and
    `indexes` created for it with no bases."""
    workdir.mkdir(parents=True, exist_ok=True)
    serverdir = workdir / "server"
    log = workdir / "devpi.log"
    env = {**os.environ, "DEVPI_SERVERDIR": str(serverdir)}
    with open(log, "ab") as out:
        subprocess.run(
            [
                str(PEERS_BIN / "devpi-init"),
                "--serverdir",
                str(serverdir),
                "--no-root-pypi",
                "--root-passwd",
                DEVPI_PASSWORD,
            ],
            check=True,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    port = free_port()
    proc = spawn(
        [
            str(PEERS_BIN / "devpi-server"),
            "--serverdir",
            str(serverdir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--offline-mode",
        ],
        log,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    wait_http(url + "/+api", proc, log, timeout=120)
    clientdir = workdir / "client"

    def devpi(*args: str) -> None:
        with open(log, "ab") as out:
            subprocess.run(
                [str(PEERS_BIN / "devpi"), "--clientdir", str(clientdir), *args],
                check=True,
                stdout=out,
                stderr=subprocess.STDOUT,
                timeout=120,
            )

    devpi("use", url)
    devpi("user", "-c", DEVPI_USER, f"password={DEVPI_PASSWORD}")
    devpi("login", DEVPI_USER, "--password", DEVPI_PASSWORD)
    for index in indexes:
        devpi("index", "-c", f"{DEVPI_USER}/{index}", "bases=", "volatile=True")
    service = Service(
        "devpi", url, proc, workdir, _version([str(PEERS_BIN / "devpi-server"), "--version"])
    )
    # devpi-client's login token: what `devpi upload` sends, and no password hash per request.
    logins = json.loads((clientdir / "auth.json").read_text())["auth"]
    user, token = next(iter(logins.values()))[0]
    header = base64.b64encode(f"{user}:{token}".encode()).decode()
    service.extra.update(user=DEVPI_USER, password=DEVPI_PASSWORD, auth_header=header)
    return service


def python_for_venvs() -> str:
    """The interpreter fresh client venvs are made from: the one running the bench."""
    return getattr(sys, "_base_executable", sys.executable)
