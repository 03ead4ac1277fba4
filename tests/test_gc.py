"""Online garbage collection, on SQLite + filesystem or (CARGOHOLD_TEST_BACKEND=postgres)
PostgreSQL + S3: storage back to its baseline, pushes racing the sweeper, a sweeper killed
between deleting an object and its row, and the figures in the management API."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.pypi.dists import form_for, make_sdist, make_wheel, upload
from tests.support.client import OCIClient, digest_of
from tests.support.server import BIN, ROOT, Server, running_server
from tests.support.services import load

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def gc_server(tmp_path):
    with running_server(tmp_path / "data", {"CARGOHOLD_GC_GRACE_SECONDS": "0"}) as srv:
        yield srv


def stored(srv: Server) -> dict[str, int]:
    """Every blob object in the store, digest -> size."""
    if srv.env.get("CARGOHOLD_STORAGE") == "s3":
        prefix = srv.env["CARGOHOLD_S3_PREFIX"].strip("/") + "/"
        services = load()
        assert services is not None
        s3 = services.s3_client()
        out = {}
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=services.s3_bucket, Prefix=f"{prefix}blobs/"
        ):
            for obj in page.get("Contents", []):
                alg, _, hexpart = obj["Key"][len(f"{prefix}blobs/") :].split("/")
                out[f"{alg}:{hexpart}"] = obj["Size"]
        return out
    root = srv.data_dir / "storage" / "blobs"
    return {f"{p.parent.parent.name}:{p.name}": p.stat().st_size for p in root.glob("*/*/*")}


def gc_run(srv: Server) -> str:
    return srv.flask("gc", "run")


def client(srv: Server) -> OCIClient:
    return OCIClient(srv.url, "admin", srv.users["admin"])


def push(c: OCIClient, repo: str, ref: str, layers: list[bytes], attempts: int = 60) -> str:
    """Push as a client does, starting over when the registry answers that content it had is
    gone (BLOB_UNKNOWN on upload, MANIFEST_BLOB_UNKNOWN on the manifest)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "ref": ref}).encode()
    for _ in range(attempts):
        descs, ok = [], True
        for blob in [config, *layers]:
            digest = digest_of(blob)
            # A client skips what the registry says it has (HEAD), else uploads it.
            if c.request("HEAD", f"/v2/{repo}/blobs/{digest}").status_code != 200:
                r = c.request("POST", f"/v2/{repo}/blobs/uploads/?digest={digest}", data=blob)
                if r.status_code != 201:
                    assert r.status_code == 404 and "BLOB_UNKNOWN" in r.text, r.text
                    ok = False
                    break
            descs.append(
                {"mediaType": "application/octet-stream", "digest": digest, "size": len(blob)}
            )
        if not ok:
            continue
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": {**descs[0], "mediaType": "application/vnd.oci.image.config.v1+json"},
            "layers": descs[1:],
        }
        r = c.push_manifest(repo, ref, manifest)
        if r.status_code == 201:
            return r.headers["Docker-Content-Digest"]
        assert r.status_code in (400, 404) and "BLOB_UNKNOWN" in r.text, r.text
    raise AssertionError(f"push of {repo}:{ref} did not succeed in {attempts} attempts")


def pull_completely(c: OCIClient, repo: str, ref: str) -> set[str]:
    """Fetch the manifest and every blob it names, checking each digest; return the digests."""
    r = c.request("GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": MANIFEST})
    assert r.status_code == 200, r.text
    names = {digest_of(r.content)}
    doc = r.json()
    for desc in [doc["config"], *doc["layers"]]:
        blob = c.request("GET", f"/v2/{repo}/blobs/{desc['digest']}")
        assert blob.status_code == 200, f"{repo}:{ref} misses {desc['digest']}"
        assert digest_of(blob.content) == desc["digest"]
        names.add(desc["digest"])
    return names


def delete_manifest(c: OCIClient, repo: str, digest: str) -> None:
    r = c.request("DELETE", f"/v2/{repo}/manifests/{digest}")
    assert r.status_code == 202, r.text


# ---- storage back to its baseline ----------------------------------------------------------


# Issue figures: 200 images and 200 Python files pushed over HTTP, every one deleted, one pass.
IMAGES = 200
PYTHON_FILES = 200
THREADS = 8


def token_session(srv: Server, repos: list[str]) -> requests.Session:
    """A keep-alive session holding one Bearer token for all these repositories, as a client
    pushing many images to them would (no challenge round trip per request)."""
    challenge = requests.get(f"{srv.url}/v2/", timeout=30).headers["WWW-Authenticate"]
    params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
    scopes = [f"repository:{repo}:pull,push,delete" for repo in repos]
    r = requests.get(
        params["realm"],
        params={"service": params["service"], "scope": scopes},
        auth=("admin", srv.users["admin"]),
        timeout=30,
    )
    assert r.status_code == 200, r.text
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {r.json()['token']}"
    return session


def per_thread(make):
    """One session per worker thread: requests' sessions are not shared between threads."""
    local = threading.local()

    def get():
        if not hasattr(local, "session"):
            local.session = make()
        return local.session

    return get


def push_small_image(session: requests.Session, base: str, repo: str, i: int, shared: bytes):
    config = json.dumps({"architecture": "amd64", "os": "linux", "image": i}).encode()
    descs = []
    for blob in (config, shared, f"layer of image {i}".encode() + os.urandom(64)):
        digest = digest_of(blob)
        r = session.post(f"{base}/v2/{repo}/blobs/uploads/?digest={digest}", data=blob, timeout=60)
        assert r.status_code == 201, r.text
        descs.append({"mediaType": "application/octet-stream", "digest": digest, "size": len(blob)})
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": {**descs[0], "mediaType": "application/vnd.oci.image.config.v1+json"},
        "layers": descs[1:],
    }
    r = session.put(
        f"{base}/v2/{repo}/manifests/v{i}",
        data=json.dumps(manifest),
        headers={"Content-Type": MANIFEST},
        timeout=60,
    )
    assert r.status_code == 201, r.text
    return repo, r.headers["Docker-Content-Digest"]


def test_deleting_everything_returns_storage_to_baseline(gc_server, tmp_path):
    srv = gc_server
    auth = ("admin", srv.users["admin"])
    baseline = stored(srv)
    repos = [f"acme/main/gc/app{i}" for i in range(10)]
    oci = per_thread(lambda: token_session(srv, repos))
    shared = os.urandom(2048)

    def push_one(i: int) -> tuple[str, str]:
        return push_small_image(oci(), srv.url, repos[i % len(repos)], i, shared)

    # Python files: a wheel and an sdist per release, over four projects.
    dists = []
    for i in range(PYTHON_FILES):
        project, version = f"gcpkg{i % 4}", f"1.{i // 2}"
        folder = tmp_path / f"dist{i}"
        folder.mkdir()
        maker = make_wheel if i % 2 else make_sdist
        dists.append((project, version, maker(folder, project, version)))
    pypi = f"{srv.url}/api/v1/acme/main/python/"

    def basic_session() -> requests.Session:
        session = requests.Session()
        session.auth = auth
        return session

    python = per_thread(basic_session)

    def upload_one(dist) -> tuple[str, str]:
        project, version, path = dist
        with open(path, "rb") as f:
            r = python().post(
                pypi,
                data=form_for(path, project, version),
                files={"content": (path.name, f, "application/octet-stream")},
                timeout=120,
            )
        assert r.status_code == 200, r.text
        return project, path.name

    with ThreadPoolExecutor(THREADS) as pool:
        pushed = list(pool.map(push_one, range(IMAGES)))
        files = list(pool.map(upload_one, dists))
    assert len(stored(srv)) >= len(baseline) + IMAGES * 3 + PYTHON_FILES * 2

    def delete_image(item: tuple[str, str]) -> None:
        repo, digest = item
        r = oci().delete(f"{srv.url}/v2/{repo}/manifests/{digest}", timeout=60)
        assert r.status_code == 202, r.text

    def delete_file(item: tuple[str, str]) -> None:
        project, name = item
        r = python().delete(f"{pypi}projects/{project}/files/{name}", timeout=60)
        assert r.status_code in (200, 204), r.text

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(delete_image, pushed))
        list(pool.map(delete_file, files))
    gc_run(srv)

    assert stored(srv) == baseline
    (blobs_left,) = srv.sql("SELECT count(*) FROM blobs")[0]
    assert blobs_left == len(baseline)
    figures = requests.get(f"{srv.url}/api/v1/admin/gc", auth=auth, timeout=30).json()
    assert figures["candidates_due"] == 0
    # Each image: manifest, config, own layer (and the shared layer once); each file: the file
    # and its manifest at least (metadata blobs may be shared).
    assert figures["blobs_deleted"] >= IMAGES * 3 + 1 + PYTHON_FILES * 2
    assert figures["bytes_reclaimed"] > IMAGES * 64
    assert figures["last_run_at"]


def test_grace_period_keeps_content(tmp_path):
    with running_server(tmp_path / "data") as srv:
        c = client(srv)
        digest = push(c, "acme/main/gc/kept", "v1", [b"kept layer"])
        delete_manifest(c, "acme/main/gc/kept", digest)
        before = stored(srv)
        assert "deleted 0 blob(s)" in gc_run(srv)
        assert stored(srv) == before
        status = json.loads(srv.flask("gc", "status"))
        assert status["candidates_pending"] >= 3 and status["candidates_due"] == 0
        assert status["grace_seconds"] == 24 * 3600


# ---- pushes racing the sweeper ---------------------------------------------------------------


def test_concurrent_pushes_while_the_sweeper_collects_the_same_layers(gc_server):
    srv, c = gc_server, client(gc_server)
    shared = [os.urandom(4096) for _ in range(4)]
    # Images using the shared layers, deleted: their layers are due for collection at once.
    for i in range(6):
        repo = f"acme/main/race/old{i}"
        delete_manifest(c, repo, push(c, repo, "v1", [shared[i % 4], shared[(i + 1) % 4]]))

    done = threading.Event()
    sweeps = []

    def sweeper() -> None:
        while not done.is_set():
            sweeps.append(gc_run(srv))

    def one_push(i: int) -> tuple[str, str]:
        repo = f"acme/main/race/new{i % 5}"
        own = f"own layer {i}".encode()
        push(
            OCIClient(srv.url, "admin", srv.users["admin"]),
            repo,
            f"t{i}",
            [shared[i % 4], shared[(i + 2) % 4], own],
        )
        return repo, f"t{i}"

    thread = threading.Thread(target=sweeper)
    thread.start()
    try:
        with ThreadPoolExecutor(20) as pool:
            images = list(pool.map(one_push, range(20)))
    finally:
        done.set()
        thread.join()
    assert sweeps

    live: set[str] = set()
    for repo, tag in images:
        live |= pull_completely(c, repo, tag)
    gc_run(srv)
    gc_run(srv)
    # Every pushed image still pulls whole, and nothing else is left in the store.
    for repo, tag in images:
        pull_completely(c, repo, tag)
    assert set(stored(srv)) == live


# ---- a sweeper killed mid-deletion -----------------------------------------------------------

KILLABLE_SWEEPER = """
import sys, time
from app import create_app
from app.config import Settings
from app.registry import gc

app = create_app(Settings.from_env())
with app.app_context():
    store = app.extensions["cargohold.store"]
    real_delete = store.delete

    def delete_then_hang(digest):
        real_delete(digest)
        with open(sys.argv[1], "w") as f:
            f.write(digest)
        time.sleep(3600)

    store.delete = delete_then_hang
    gc.sweep(store)
"""


def test_sigkill_between_object_and_row_then_restart(gc_server, tmp_path):
    srv, c = gc_server, client(gc_server)
    keep = push(c, "acme/main/kill/keep", "v1", [b"kept-a", b"shared-k"])
    gone = push(c, "acme/main/kill/gone", "v1", [b"gone-b", b"shared-k"])
    delete_manifest(c, "acme/main/kill/gone", gone)

    marker = tmp_path / "deleted"
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLABLE_SWEEPER, str(marker)], cwd=ROOT, env=srv.env
    )
    try:
        deadline = time.monotonic() + 120
        while not marker.exists() or not marker.read_text():
            assert proc.poll() is None, "the sweeper exited before deleting anything"
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    victim = marker.read_text()
    assert victim not in stored(srv)
    assert srv.sql("SELECT state FROM blobs WHERE digest = ?", victim) == [("deleting",)]
    # Meanwhile the content is unknown: a pull says so, a push of it is asked to upload again.
    r = c.request(
        "POST", f"/v2/acme/main/kill/keep/blobs/uploads/?mount={victim}&from=acme/main/kill/gone"
    )
    assert r.status_code == 202

    assert "deleted" in gc_run(srv)
    assert srv.sql("SELECT count(*) FROM blobs WHERE state = 'deleting'") == [(0,)]
    assert pull_completely(c, "acme/main/kill/keep", keep) <= set(stored(srv))
    assert digest_of(b"gone-b") not in stored(srv)
    assert digest_of(b"shared-k") in stored(srv)
    # The same content can be pushed again and pulled whole.
    again = push(c, "acme/main/kill/gone", "v2", [b"gone-b", b"shared-k"])
    pull_completely(c, "acme/main/kill/gone", again)


# ---- blobs being deleted are unknown to pushes ----------------------------------------------


def test_content_being_deleted_is_refused(gc_server):
    srv, c = gc_server, client(gc_server)
    repo = "acme/main/state/app"
    layer = b"doomed layer"
    digest = push(c, repo, "v1", [layer])
    manifest = c.request("GET", f"/v2/{repo}/manifests/v1", headers={"Accept": MANIFEST}).json()
    # What the sweeper's committed mark leaves, before it deletes the object.
    srv.sql("UPDATE blobs SET state = 'deleting' WHERE digest = ?", digest_of(layer))

    assert c.request("HEAD", f"/v2/{repo}/blobs/{digest_of(layer)}").status_code == 404
    r = c.push_manifest(repo, "v2", manifest)
    assert r.status_code == 400 and "MANIFEST_BLOB_UNKNOWN" in r.text, r.text
    r = c.request("POST", f"/v2/{repo}/blobs/uploads/?digest={digest_of(layer)}", data=layer)
    assert r.status_code == 404 and "BLOB_UNKNOWN" in r.text, r.text
    r = c.request(
        "POST", f"/v2/acme/main/state/other/blobs/uploads/?mount={digest_of(layer)}&from={repo}"
    )
    assert r.status_code == 202  # no mount: an ordinary upload session instead
    assert c.request("GET", f"/v2/{repo}/manifests/{digest}").status_code == 200


def test_python_upload_of_content_being_deleted_is_refused(gc_server, tmp_path):
    srv = gc_server
    auth = ("admin", srv.users["admin"])
    wheel = make_wheel(tmp_path, "gcshared", "1.0")
    r = upload(f"{srv.url}/api/v1/acme/main/python/", wheel, "gcshared", "1.0", auth)
    assert r.status_code == 200, r.text
    ((file_hex, meta_hex),) = srv.sql(
        "SELECT sha256, metadata_sha256 FROM python_files WHERE filename = ?", wheel.name
    )
    # The same file into other registries, while the sweeper has marked its file or its
    # metadata: the publish is told to retry, and nothing is written over the content.
    for registry, hexdigest in (("gcfile", file_hex), ("gcmeta", meta_hex)):
        made = requests.post(
            f"{srv.url}/api/v1/orgs/acme/registries", json={"name": registry}, auth=auth, timeout=30
        )
        assert made.status_code == 201, made.text
        srv.sql("UPDATE blobs SET state = 'deleting' WHERE digest = ?", f"sha256:{hexdigest}")
        url = f"{srv.url}/api/v1/acme/{registry}/python/"
        before = srv.sql("SELECT count(*) FROM python_files")
        r = upload(url, wheel, "gcshared", "1.0", auth)
        assert r.status_code == 503, r.text
        assert srv.sql("SELECT count(*) FROM python_files") == before
        srv.sql("UPDATE blobs SET state = 'live' WHERE digest = ?", f"sha256:{hexdigest}")
        # Once the content is live again (or uploaded again), the same publish succeeds.
        assert upload(url, wheel, "gcshared", "1.0", auth).status_code == 200


# ---- bad input and the management API ---------------------------------------------------------


def test_bad_input_and_authorization(gc_server):
    srv = gc_server
    bad = subprocess.run(
        [str(BIN / "flask"), "gc", "run", "--batch-size", "0"],
        cwd=ROOT,
        env=srv.env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "batch-size" in bad.stderr
    bad = subprocess.run(
        [str(BIN / "flask"), "gc", "run", "--batch-size", "many"],
        cwd=ROOT,
        env=srv.env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    url = f"{srv.url}/api/v1/admin/gc"
    assert requests.get(url, timeout=30).status_code == 401
    assert requests.get(url, auth=("alice", srv.users["alice"]), timeout=30).status_code == 403
    r = requests.get(url, auth=("admin", srv.users["admin"]), timeout=30)
    assert r.status_code == 200
    assert set(r.json()) >= {"candidates_pending", "bytes_reclaimed", "last_run_at"}


def test_reconcile_removes_objects_without_rows(gc_server):
    srv, c = gc_server, client(gc_server)
    digest = push(c, "acme/main/rec/app", "v1", [b"reconciled layer"])
    orphan = digest_of(b"orphan")
    # An object a crash left behind: in the store, no row.
    srv.app().extensions["cargohold.store"].put(orphan, b"orphan")
    assert orphan in stored(srv)
    out = srv.flask("gc", "reconcile")
    assert "removed 1 orphaned object(s)" in out
    assert orphan not in stored(srv)
    pull_completely(c, "acme/main/rec/app", digest)


def test_reconcile_never_deletes_an_object_a_push_claims_meanwhile(gc_server):
    """An orphaned object whose content a client uploads again: the push finds the object in
    place and writes only its row. Between the reconcile pass's look at the rows and its
    deletion, that push must either keep the object or be refused, never be left with a row
    whose object is gone."""
    srv = gc_server
    orphan, data = digest_of(b"orphan claimed again"), b"orphan claimed again"
    app = srv.app()
    from app.models.transaction import unit_of_work
    from app.registry import blobs, gc
    from app.registry.errors import RegistryError

    store = app.extensions["cargohold.store"]
    store.put(orphan, data)
    outcome: list[str] = []

    def push_claims(digest: str) -> None:
        with app.app_context():
            try:
                with unit_of_work():
                    blobs.record(digest, len(data))
                outcome.append("recorded")
            except RegistryError as error:
                outcome.append(error.code)

    class ClaimedWhileDeleting:
        """The store, with a push claiming the content just before the pass deletes it."""

        def list_blobs(self):
            return store.list_blobs()

        def delete(self, digest: str) -> None:
            claim = threading.Thread(target=push_claims, args=(digest,))
            claim.start()
            claim.join(timeout=60)
            store.delete(digest)

    with app.app_context():
        gc.reconcile(ClaimedWhileDeleting())
    assert outcome == ["BLOB_UNKNOWN"], outcome
    assert srv.sql("SELECT state FROM blobs WHERE digest = ?", orphan) == []
    assert orphan not in stored(srv)


def test_index_records_references_of_older_manifests(gc_server):
    srv, c = gc_server, client(gc_server)
    digest = push(c, "acme/main/idx/app", "v1", [b"indexed layer"])
    expected = srv.sql("SELECT count(*) FROM manifest_references")
    # As a registry upgraded from before garbage collection holds them: no references.
    srv.sql("DELETE FROM manifest_references")
    assert "indexed 1 manifest(s)" in srv.flask("gc", "index")
    assert srv.sql("SELECT count(*) FROM manifest_references") == expected == [(2,)]
    srv.flask("gc", "index")
    assert srv.sql("SELECT count(*) FROM manifest_references") == expected
    gc_run(srv)
    pull_completely(c, "acme/main/idx/app", digest)


# ---- graph-aware delete ------------------------------------------------------------------------

INDEX = "application/vnd.oci.image.index.v1+json"


def push_referrer(c: OCIClient, repo: str, subject: str, kind: str) -> str:
    empty = c.push_blob(repo, b"{}")
    payload = c.push_blob(repo, f"{kind} of {subject}".encode())
    size = c.request("GET", f"/v2/{repo}/manifests/{subject}", headers={"Accept": MANIFEST})
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "artifactType": f"application/vnd.test.{kind}",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [
            {
                "mediaType": "application/octet-stream",
                "digest": payload,
                "size": len(f"{kind} of {subject}".encode()),
            }
        ],
        "subject": {"mediaType": MANIFEST, "digest": subject, "size": len(size.content)},
    }
    r = c.push_manifest(repo, digest_of(json.dumps(manifest).encode()), manifest)
    assert r.status_code == 201, r.text
    return r.headers["Docker-Content-Digest"]


def push_index(c: OCIClient, repo: str, ref: str, children: list[str]) -> str:
    descs = []
    for child in children:
        body = c.request("GET", f"/v2/{repo}/manifests/{child}", headers={"Accept": MANIFEST})
        descs.append({"mediaType": MANIFEST, "digest": child, "size": len(body.content)})
    r = c.push_manifest(repo, ref, {"schemaVersion": 2, "mediaType": INDEX, "manifests": descs})
    assert r.status_code == 201, r.text
    return r.headers["Docker-Content-Digest"]


def exists(c: OCIClient, repo: str, digest: str) -> bool:
    accept = f"{MANIFEST}, {INDEX}"
    r = c.request("HEAD", f"/v2/{repo}/manifests/{digest}", headers={"Accept": accept})
    return r.status_code == 200


def test_graph_aware_delete_with_dry_run(gc_server):
    srv, c = gc_server, client(gc_server)
    auth = ("admin", srv.users["admin"])
    repo = "acme/main/graph/app"
    api = f"{srv.url}/api/v1/orgs/acme/registries/main/repositories/graph/app/manifests"

    image = push(c, repo, "v1", [b"graph image layer"])
    signature = push_referrer(c, repo, image, "signature")
    sbom = push_referrer(c, repo, image, "sbom")
    countersign = push_referrer(c, repo, signature, "signature")
    other = push(c, repo, "other", [b"unrelated layer"])

    r = requests.delete(f"{api}/{image}?dry_run=true", auth=auth, timeout=30)
    assert r.status_code == 200, r.text
    plan = {item["digest"]: item["reason"] for item in r.json()["removed"]}
    assert plan == {
        image: "requested",
        signature: f"referrer of {image}",
        sbom: f"referrer of {image}",
        countersign: f"referrer of {signature}",
    }
    assert all(exists(c, repo, d) for d in plan)  # a dry run changes nothing

    # The registry protocol's DELETE is graph-aware too.
    assert c.request("DELETE", f"/v2/{repo}/manifests/{image}").status_code == 202
    assert not any(exists(c, repo, d) for d in plan)
    assert exists(c, repo, other)

    # An index takes the children nothing else uses: not one another index or a tag holds.
    solo = push(c, repo, "solo-src", [b"solo child"])
    shared = push(c, repo, "shared-src", [b"shared child"])
    tagged = push(c, repo, "tagged", [b"tagged child"])
    for tag in ("solo-src", "shared-src"):
        assert c.request("DELETE", f"/v2/{repo}/manifests/{tag}").status_code == 202
    keeper = push_index(c, repo, "keeper", [shared])
    index = push_index(c, repo, "multi", [solo, shared, tagged])
    r = requests.delete(f"{api}/{index}", auth=auth, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["dry_run"] is False
    assert {item["digest"] for item in r.json()["removed"]} == {index, solo}
    assert not exists(c, repo, index) and not exists(c, repo, solo)
    assert exists(c, repo, shared) and exists(c, repo, tagged) and exists(c, repo, keeper)

    gc_run(srv)
    for ref in ("other", "tagged"):
        pull_completely(c, repo, ref)
    assert digest_of(b"graph image layer") not in stored(srv)
    assert digest_of(b"solo child") not in stored(srv)
    assert digest_of(b"shared child") in stored(srv)


def test_graph_delete_bad_input(gc_server):
    srv = gc_server
    auth = ("admin", srv.users["admin"])
    api = f"{srv.url}/api/v1/orgs/acme/registries/main/repositories"
    zero = "sha256:" + "0" * 64
    push(client(srv), "acme/main/bad/app", "v1", [b"bad input layer"])
    cases = [
        (f"{api}/bad/app/manifests/{zero}?dry_run=maybe", 400, "INVALID"),
        (f"{api}/bad/app/manifests/latest", 400, "DIGEST_INVALID"),
        (f"{api}/bad/app/manifests/sha256:xyz", 400, "DIGEST_INVALID"),
        (f"{api}/bad/app/manifests/{zero}", 404, "MANIFEST_UNKNOWN"),
        (f"{api}/nothing/here/manifests/{zero}", 404, "NAME_UNKNOWN"),
        (f"{api}/Bad..Name/manifests/{zero}", 400, "NAME_INVALID"),
        (f"{api}/cargohold.python/pkg/manifests/{zero}", 403, "DENIED"),
    ]
    for url, status, code in cases:
        r = requests.delete(url, auth=auth, timeout=30)
        assert r.status_code == status, (url, r.text)
        assert r.json()["errors"][0]["code"] == code, (url, r.text)
    r = requests.delete(
        f"{api}/bad/app/manifests/{zero}", auth=("victor", srv.users["victor"]), timeout=30
    )
    assert r.status_code == 403


def test_worker_pass_expires_abandoned_uploads_and_collects(gc_server):
    srv, c = gc_server, client(gc_server)
    repo = "acme/main/worker/app"
    r = c.request("POST", f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, r.text
    location = r.headers["Location"]
    r = c.request("PATCH", location, data=b"half of a layer")
    assert r.status_code == 202, r.text
    srv.sql(
        "UPDATE uploads SET created_at = '2000-01-01 00:00:00', updated_at = '2000-01-01 00:00:00'"
    )
    digest = push(c, repo, "v1", [b"worker layer"])
    delete_manifest(c, repo, digest)

    srv.flask("gc", "worker", "--once")
    assert srv.sql("SELECT count(*) FROM uploads") == [(0,)]
    assert c.request("GET", location).status_code == 404
    assert digest_of(b"worker layer") not in stored(srv)
    assert json.loads(srv.flask("gc", "status"))["candidates_pending"] == 0
