"""Storage quotas over HTTP, on the backend CARGOHOLD_TEST_BACKEND names: usage counted once per
distinct blob in a scope, pushes past a limit refused with the figures (blob upload, manifest,
mount, Python upload, a real client), deletion and GC giving the space back, concurrent pushes
held to the limit, who may read and set quotas, bad input, and the recount."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.clients.conftest import make_clients
from tests.clients.layout import write_oci_layout
from tests.conftest import require_tool
from tests.pypi.dists import make_wheel, upload
from tests.support.client import OCIClient, digest_of
from tests.support.server import make_server, running_server
from tests.support.services import Backend

# The limits new organisations and registries get.
DEFAULT_ORG = 10**11
DEFAULT_REGISTRY = 10**10
CONFIG = json.dumps({"architecture": "amd64", "os": "linux"}).encode()


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    # No grace period: `flask gc run` collects at once what nothing references.
    env = {
        "CARGOHOLD_GC_GRACE_SECONDS": "0",
        "CARGOHOLD_DEFAULT_ORG_QUOTA_BYTES": str(DEFAULT_ORG),
        "CARGOHOLD_DEFAULT_REGISTRY_QUOTA_BYTES": str(DEFAULT_REGISTRY),
    }
    with running_server(tmp_path_factory.mktemp("quotas"), env, workers=4) as server:
        yield server


def admin(srv) -> tuple[str, str]:
    return ("admin", srv.users["admin"])


def quota_url(srv, org: str, registry: str | None = None) -> str:
    base = f"{srv.url}/api/v1/orgs/{org}"
    return f"{base}/registries/{registry}/quota" if registry else f"{base}/quota"


def new_org(srv, name: str, *registries: str) -> None:
    r = requests.post(f"{srv.url}/api/v1/orgs", json={"name": name}, auth=admin(srv), timeout=30)
    assert r.status_code == 201, r.text
    for reg in registries:
        r = requests.post(
            f"{srv.url}/api/v1/orgs/{name}/registries",
            json={"name": reg},
            auth=admin(srv),
            timeout=30,
        )
        assert r.status_code == 201, r.text


def used(srv, org: str, registry: str | None = None) -> int:
    r = requests.get(quota_url(srv, org, registry), auth=admin(srv), timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["used_bytes"]


def set_limit(srv, limit, org: str, registry: str | None = None) -> requests.Response:
    return requests.put(
        quota_url(srv, org, registry), json={"limit_bytes": limit}, auth=admin(srv), timeout=30
    )


def manifest_for(config: bytes, layers: list[bytes], **extra) -> dict:
    return {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": digest_of(config),
            "size": len(config),
        },
        "layers": [
            {
                "mediaType": "application/vnd.oci.image.layer.v1.tar",
                "digest": digest_of(layer),
                "size": len(layer),
            }
            for layer in layers
        ],
        **extra,
    }


def body_of(manifest: dict) -> bytes:
    return json.dumps(manifest).encode()  # as OCIClient.push_manifest sends it


def refusal(r: requests.Response) -> str:
    assert r.status_code == 403, r.text
    error = r.json()["errors"][0]
    assert error["code"] == "DENIED"
    return error["detail"]


def test_shared_content_counted_once_per_scope(srv):
    new_org(srv, "qshare", "one", "two")
    c = OCIClient(srv.url, "admin", srv.users["admin"])
    layer = b"shared layer " * 100
    bodies = []
    for repo in ("qshare/one/a", "qshare/one/b", "qshare/one/c"):
        _, manifest = c.push_image(repo, "v1", [layer], annotations={"repo": repo})
        bodies.append(len(body_of(manifest)))
    # The same layer and config in three repositories, counted once; each manifest differs.
    assert used(srv, "qshare", "one") == len(layer) + len(CONFIG) + sum(bodies)

    _, manifest = c.push_image("qshare/two/d", "v1", [layer], annotations={"repo": "d"})
    two = len(layer) + len(CONFIG) + len(body_of(manifest))
    assert used(srv, "qshare", "two") == two
    # In two registries of the organisation, still once for the organisation.
    assert used(srv, "qshare") == used(srv, "qshare", "one") + two - len(layer) - len(CONFIG)

    # New scopes got the configured defaults.
    figures = requests.get(quota_url(srv, "qshare", "one"), auth=admin(srv), timeout=30).json()
    assert figures["limit_bytes"] == DEFAULT_REGISTRY
    assert figures["available_bytes"] == DEFAULT_REGISTRY - figures["used_bytes"]
    figures = requests.get(quota_url(srv, "qshare"), auth=admin(srv), timeout=30).json()
    assert figures["limit_bytes"] == DEFAULT_ORG

    # The same image pushed again, and a second tag on it, add nothing.
    before = used(srv, "qshare")
    c.push_image("qshare/one/a", "v2", [layer], annotations={"repo": "qshare/one/a"})
    assert used(srv, "qshare") == before


def test_blob_uploads_past_the_limit_are_refused(srv):
    new_org(srv, "qblob", "main")
    c = OCIClient(srv.url, "admin", srv.users["admin"])
    repo = "qblob/main/app"
    small = b"s" * 100
    c.push_blob(repo, small)
    r = set_limit(srv, 1000, "qblob", "main")
    assert r.status_code == 200, r.text
    assert r.json() == {
        "scope": "registry",
        "name": "qblob/main",
        "limit_bytes": 1000,
        "used_bytes": 100,
        "available_bytes": 900,
    }

    # Monolithic: POST with the whole body.
    big = b"b" * 1200
    r = c.request("POST", f"/v2/{repo}/blobs/uploads/?digest={digest_of(big)}", data=big)
    detail = refusal(r)
    assert "registry qblob/main" in detail
    assert "100 of 1000 bytes used" in detail and "1200 more" in detail

    # Chunked: POST, PATCH, then the closing PUT is refused; the session is gone after.
    r = c.request("POST", f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202
    location = r.headers["Location"]
    r = c.request("PATCH", location, data=big, headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 202, r.text
    r = c.request("PUT", f"{r.headers['Location']}?digest={digest_of(big)}")
    assert "100 of 1000 bytes used" in refusal(r)
    assert c.request("GET", location).status_code == 404

    # Nothing of the refused blob is readable, no row links it, its bytes await the collector.
    assert c.request("HEAD", f"/v2/{repo}/blobs/{digest_of(big)}").status_code == 404
    assert srv.sql("SELECT count(*) FROM blob_links WHERE digest = ?", digest_of(big)) == [(0,)]
    assert srv.sql("SELECT count(*) FROM gc_candidates WHERE digest = ?", digest_of(big)) == [(1,)]
    assert used(srv, "qblob", "main") == 100

    # What fits still goes in; content the scope holds is never refused, even when full.
    c.push_blob(repo, b"f" * 900)
    assert used(srv, "qblob", "main") == 1000
    c.push_blob("qblob/main/other", small)
    assert "1000 of 1000 bytes used" in refusal(
        c.request("POST", f"/v2/{repo}/blobs/uploads/?digest={digest_of(b'x')}", data=b"x")
    )

    # The organisation's limit applies to all its registries, named as the scope.
    assert set_limit(srv, None, "qblob", "main").status_code == 200
    assert set_limit(srv, 1000, "qblob").status_code == 200
    detail = refusal(
        c.request("POST", f"/v2/{repo}/blobs/uploads/?digest={digest_of(b'x')}", data=b"x")
    )
    assert "organisation qblob" in detail and "1000 of 1000 bytes used" in detail


def test_manifest_push_past_the_limit_is_refused(srv):
    new_org(srv, "qman", "main")
    c = OCIClient(srv.url, "admin", srv.users["admin"])
    repo = "qman/main/app"
    layer = b"l" * 500
    c.push_blob(repo, CONFIG)
    c.push_blob(repo, layer)
    full = len(CONFIG) + len(layer)
    assert set_limit(srv, full + 10, "qman", "main").status_code == 200

    manifest = manifest_for(CONFIG, [layer])
    r = c.push_manifest(repo, "v1", manifest)
    detail = refusal(r)
    assert f"{full} of {full + 10} bytes used" in detail
    assert f"{len(body_of(manifest))} more" in detail
    assert c.request("GET", f"/v2/{repo}/manifests/v1").status_code == 404
    assert used(srv, "qman", "main") == full

    # Room made, the same push goes through, and pushing it again when full adds nothing.
    assert set_limit(srv, full + len(body_of(manifest)), "qman", "main").status_code == 200
    assert c.push_manifest(repo, "v1", manifest).status_code == 201
    assert c.push_manifest(repo, "v1", manifest).status_code == 201
    assert c.push_manifest(repo, "again", manifest).status_code == 201


def test_mount_of_content_new_to_the_scope_is_refused(srv):
    new_org(srv, "qmount", "one", "two")
    c = OCIClient(srv.url, "admin", srv.users["admin"])
    blob = b"m" * 300
    digest = c.push_blob("qmount/one/src", blob)
    assert set_limit(srv, 0, "qmount", "two").status_code == 200
    r = c.request("POST", f"/v2/qmount/two/dst/blobs/uploads/?mount={digest}&from=qmount/one/src")
    detail = refusal(r)
    assert "registry qmount/two" in detail and "0 of 0 bytes used" in detail
    assert c.request("HEAD", f"/v2/qmount/two/dst/blobs/{digest}").status_code == 404

    # Within one registry the content is no news: mounted even with the registry full.
    assert set_limit(srv, 300, "qmount", "one").status_code == 200
    r = c.request("POST", f"/v2/qmount/one/dst/blobs/uploads/?mount={digest}&from=qmount/one/src")
    assert r.status_code == 201, r.text
    assert used(srv, "qmount", "one") == 300


def test_python_upload_past_the_limit_is_refused(srv, tmp_path):
    new_org(srv, "qpy", "main")
    wheel = make_wheel(tmp_path, "quota-demo", "1.0")
    assert set_limit(srv, 100, "qpy", "main").status_code == 200
    url = f"{srv.url}/api/v1/qpy/main/python/"
    r = upload(url, wheel, "quota-demo", "1.0", admin(srv))
    assert r.status_code == 403, r.text
    assert "quota exceeded for registry qpy/main" in r.reason
    assert "0 of 100 bytes used" in r.reason
    assert srv.sql("SELECT count(*) FROM python_files WHERE filename = ?", wheel.name) == [(0,)]
    file_digest = digest_of(wheel.read_bytes())
    assert srv.sql("SELECT count(*) FROM blob_links WHERE digest = ?", file_digest) == [(0,)]
    assert srv.sql("SELECT count(*) FROM gc_candidates WHERE digest = ?", file_digest) == [(1,)]
    assert used(srv, "qpy", "main") == 0

    # With room, the file, its metadata and its manifest count.
    assert set_limit(srv, None, "qpy", "main").status_code == 200
    r = upload(url, wheel, "quota-demo", "1.0", admin(srv))
    assert r.status_code == 200, r.text
    ((meta_size, manifest_digest),) = srv.sql(
        "SELECT metadata_size, manifest_digest FROM python_files WHERE filename = ?", wheel.name
    )
    ((manifest_size,),) = srv.sql("SELECT size FROM blobs WHERE digest = ?", manifest_digest)
    assert used(srv, "qpy", "main") == wheel.stat().st_size + meta_size + manifest_size

    # Deleting the file gives it all back at once: its links and manifest go with it.
    r = requests.delete(
        f"{srv.url}/api/v1/qpy/main/python/projects/quota-demo/files/{wheel.name}",
        auth=admin(srv),
        timeout=30,
    )
    assert r.status_code in (200, 204), r.text
    assert used(srv, "qpy", "main") == 0


def test_deletion_and_gc_give_the_space_back(srv):
    new_org(srv, "qgc", "main")
    c = OCIClient(srv.url, "admin", srv.users["admin"])
    repo = "qgc/main/app"
    layer = b"g" * 700
    digest, manifest = c.push_image(repo, "v1", [layer])
    assert used(srv, "qgc", "main") == len(CONFIG) + len(layer) + len(body_of(manifest))
    assert c.request("DELETE", f"/v2/{repo}/manifests/{digest}").status_code == 202
    # The manifest at once; the layer and config once the collector has taken them.
    assert used(srv, "qgc", "main") == len(CONFIG) + len(layer)
    srv.flask("gc", "run")
    assert used(srv, "qgc", "main") == 0
    assert used(srv, "qgc") == 0


def test_content_pushed_again_is_held_once(srv):
    """A blob pushed again into a repository that holds it adds no reference: deleting it once
    gives its space back."""
    new_org(srv, "qagain", "main")
    c = OCIClient(srv.url, "admin", srv.users["admin"])
    layer = b"pushed twice" * 50
    digest = c.push_blob("qagain/main/app", layer)
    assert c.push_blob("qagain/main/app", layer) == digest
    assert used(srv, "qagain", "main") == used(srv, "qagain") == len(layer)
    assert c.request("DELETE", f"/v2/qagain/main/app/blobs/{digest}").status_code == 202
    assert used(srv, "qagain", "main") == used(srv, "qagain") == 0


def test_content_kept_elsewhere_stops_counting_where_it_was_deleted(srv):
    new_org(srv, "qkeep", "main")
    new_org(srv, "qkeep2", "main")
    c = OCIClient(srv.url, "admin", srv.users["admin"])
    layer = b"kept elsewhere" * 40
    mine, _ = c.push_image("qkeep/main/app", "v1", [layer])
    _, theirs = c.push_image("qkeep2/main/app", "v1", [layer], annotations={"k": "2"})
    assert c.request("DELETE", f"/v2/qkeep/main/app/manifests/{mine}").status_code == 202
    srv.flask("gc", "run")
    # The layer lives on in the other organisation; this one no longer holds nor pays for it.
    assert used(srv, "qkeep") == 0
    assert c.request("HEAD", f"/v2/qkeep/main/app/blobs/{digest_of(layer)}").status_code == 404
    assert used(srv, "qkeep2") == len(layer) + len(CONFIG) + len(body_of(theirs))
    r = c.request("GET", f"/v2/qkeep2/main/app/blobs/{digest_of(layer)}")
    assert r.status_code == 200 and r.content == layer


def test_concurrent_pushes_stay_within_the_limit(srv):
    new_org(srv, "qrace", "main")
    size = 1000
    assert set_limit(srv, 7 * size + 500, "qrace", "main").status_code == 200

    def push(i: int) -> int:
        c = OCIClient(srv.url, "admin", srv.users["admin"])
        blob = bytes([i]) * size
        return c.request(
            "POST", f"/v2/qrace/main/r{i}/blobs/uploads/?digest={digest_of(blob)}", data=blob
        ).status_code

    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(push, range(20)))
    assert sorted(set(codes)) == [201, 403], codes
    assert codes.count(201) == 7
    assert used(srv, "qrace", "main") == 7 * size

    # One layer pushed into ten repositories at once: room for it once, counted once.
    shared = b"shared" * 50
    assert set_limit(srv, 7 * size + len(shared), "qrace", "main").status_code == 200

    def push_shared(i: int) -> int:
        c = OCIClient(srv.url, "admin", srv.users["admin"])
        return c.request(
            "POST", f"/v2/qrace/main/s{i}/blobs/uploads/?digest={digest_of(shared)}", data=shared
        ).status_code

    with ThreadPoolExecutor(10) as pool:
        assert list(pool.map(push_shared, range(10))) == [201] * 10
    assert used(srv, "qrace", "main") == 7 * size + len(shared)
    # The counters agree with a recount from the links themselves.
    assert "0 had drifted" in srv.flask("quota", "recount", "qrace/main")


def test_recount_mends_drift(srv):
    new_org(srv, "qdrift", "main")
    c = OCIClient(srv.url, "admin", srv.users["admin"])
    c.push_blob("qdrift/main/app", b"d" * 250)
    ((org_id,),) = srv.sql("SELECT id FROM organisations WHERE name = 'qdrift'")
    srv.sql("UPDATE quota_scopes SET used_bytes = 99999 WHERE organisation_id = ?", org_id)
    out = srv.flask("quota", "recount")
    assert "organisation qdrift: 99999 -> 250 bytes" in out
    assert used(srv, "qdrift") == 250
    shown = json.loads(srv.flask("quota", "show", "qdrift/main"))
    assert shown[0]["used_bytes"] == 250


def test_who_reads_and_who_sets(srv):
    url = quota_url(srv, "acme")
    reg_url = quota_url(srv, "acme", "main")
    for user in ("alice", "victor"):  # members read
        for target in (url, reg_url):
            r = requests.get(target, auth=(user, srv.users[user]), timeout=30)
            assert r.status_code == 200, r.text
            assert {"used_bytes", "limit_bytes", "available_bytes"} <= set(r.json())
    # Outsiders are told the organisation does not exist; anonymous callers must log in.
    assert requests.get(url, auth=("mallory", srv.users["mallory"]), timeout=30).status_code == 404
    assert requests.get(url, timeout=30).status_code == 401
    # Only site admins set limits: not even the organisation's own admin with a token.
    for user in ("alice", "victor", "mallory"):
        r = requests.put(url, json={"limit_bytes": 10**9}, auth=(user, srv.users[user]), timeout=30)
        assert r.status_code == 403, r.text
    assert requests.put(reg_url, json={"limit_bytes": 10**9}, timeout=30).status_code == 401
    r = requests.put(url, json={"limit_bytes": 10**12}, auth=admin(srv), timeout=30)
    assert r.status_code == 200 and r.json()["limit_bytes"] == 10**12
    listed = requests.get(f"{srv.url}/api/v1/admin/quotas", auth=admin(srv), timeout=30).json()
    assert {"scope": "organisation", "name": "acme"}.items() <= [
        q for q in listed["quotas"] if q["name"] == "acme"
    ][0].items()
    r = requests.get(f"{srv.url}/api/v1/admin/quotas", auth=("alice", srv.users["alice"]))
    assert r.status_code == 403


def test_bad_input(srv):
    new_org(srv, "qbad", "main")
    c = OCIClient(srv.url, "admin", srv.users["admin"])
    c.push_blob("qbad/main/app", b"b" * 400)
    url = quota_url(srv, "qbad", "main")
    for body in (
        {},
        {"limit_bytes": -1},
        {"limit_bytes": "1000"},
        {"limit_bytes": 1.5},
        {"limit_bytes": True},
        {"limit_bytes": 2**63},
        {"limit_bytes": 1000, "extra": 1},
        [1000],
        # Below what the registry already uses.
        {"limit_bytes": 399},
    ):
        r = requests.put(url, json=body, auth=admin(srv), timeout=30)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["errors"][0]["code"] == "INVALID"
    r = requests.put(url, data="{not json", auth=admin(srv), timeout=30)
    assert r.status_code == 400, r.text
    assert r.json()["errors"][0]["code"]
    assert (
        "400 bytes"
        in requests.put(url, json={"limit_bytes": 399}, auth=admin(srv), timeout=30).json()[
            "errors"
        ][0]["message"]
    )
    assert requests.put(url, json={"limit_bytes": 400}, auth=admin(srv), timeout=30).ok
    for missing in (quota_url(srv, "nothing"), quota_url(srv, "qbad", "nothing")):
        assert requests.get(missing, auth=admin(srv), timeout=30).status_code == 404
        r = requests.put(missing, json={"limit_bytes": 1}, auth=admin(srv), timeout=30)
        assert r.status_code == 404
        assert r.json()["errors"][0]["code"] == "NOT_FOUND"


def test_skopeo_push_refused_with_the_figures(srv, tmp_path):
    require_tool("skopeo")
    new_org(srv, "qclient", "main")
    assert set_limit(srv, 200, "qclient", "main").status_code == 200
    layout = tmp_path / "layout"
    write_oci_layout(layout, {"etc/quota.txt": b"quota " * 200}, tag="v1")
    c = make_clients(srv, tmp_path / "home", "admin")
    proc = c.skopeo(
        "copy",
        "--dest-tls-verify=false",
        f"--dest-creds=admin:{srv.users['admin']}",
        f"oci:{layout}:v1",
        f"docker://{srv.host}/qclient/main/app:v1",
        check=False,
    )
    assert proc.returncode != 0
    assert "storage quota exceeded for registry qclient/main" in proc.stderr, proc.stderr
    assert "of 200 bytes used" in proc.stderr


def test_the_migration_counts_what_is_stored(tmp_path):
    backend = Backend()
    server = make_server(tmp_path / "data", extra_env=backend.env())
    server.start(workers=1)
    try:
        c = OCIClient(server.url, "admin", server.users["admin"])
        layer = b"migrated layer" * 30
        bodies = [
            len(
                body_of(
                    c.push_image(f"acme/main/m{i}", "v1", [layer], annotations={"i": str(i)})[1]
                )
            )
            for i in range(2)
        ]
        _, other = c.push_image("acme/second/m", "v1", [layer])
    finally:
        server.stop()
    try:
        server.flask("db", "downgrade", "0006_lifecycle")
        server.flask("db", "upgrade")
        rows = dict(
            server.sql(
                "SELECT r.name, s.used_bytes FROM quota_scopes s "
                "JOIN registries r ON r.id = s.registry_id "
                "JOIN organisations o ON o.id = r.organisation_id WHERE o.name = 'acme'"
            )
        )
        shared = len(layer) + len(CONFIG)
        assert rows["main"] == shared + sum(bodies)
        assert rows["second"] == shared + len(body_of(other))
        ((org_used,),) = server.sql(
            "SELECT s.used_bytes FROM quota_scopes s JOIN organisations o "
            "ON o.id = s.organisation_id WHERE o.name = 'acme'"
        )
        assert org_used == shared + sum(bodies) + len(body_of(other))
    finally:
        backend.cleanup()


def test_default_limits_are_bytes():
    from app.config import Settings

    assert Settings.from_env({}).default_org_quota_bytes is None
    settings = Settings.from_env({"CARGOHOLD_DEFAULT_REGISTRY_QUOTA_BYTES": "1073741824"})
    assert settings.default_registry_quota_bytes == 2**30
    for value in ("-1", "ten", "1.5"):
        with pytest.raises(ValueError):
            Settings.from_env({"CARGOHOLD_DEFAULT_ORG_QUOTA_BYTES": value})


def test_console_shows_usage_to_members(srv):
    from tests.console.conftest import Console

    new_org(srv, "qpage", "main")
    requests.patch(
        f"{srv.url}/api/v1/orgs/qpage/registries/main",
        json={"public": True},
        auth=admin(srv),
        timeout=30,
    ).raise_for_status()
    c = OCIClient(srv.url, "admin", srv.users["admin"])
    c.push_blob("qpage/main/app", b"p" * 2048)
    assert set_limit(srv, 4096, "qpage", "main").status_code == 200

    member = Console(srv.url)
    member.sign_in("admin", srv.users["admin"])
    org_page = member.get("/orgs/qpage").text
    assert 'max="4096" value="2048"' in org_page  # the registry's bar
    assert f'max="{DEFAULT_ORG}" value="2048"' in org_page  # the organisation's own
    reg_page = member.get("/orgs/qpage/main").text
    assert '<meter min="0" max="4096" value="2048"' in reg_page
    # The public sees the public registry, not its storage figures.
    public = Console(srv.url).get("/orgs/qpage/main")
    assert public.status_code == 200 and "<meter" not in public.text
    assert set_limit(srv, None, "qpage", "main").status_code == 200
    assert "2.0 KiB used, no limit" in member.get("/orgs/qpage/main").text
