"""Uploads with real twine and uv publish; PyPI's reuse rules; each file an OCI artifact."""

from __future__ import annotations

import hashlib
import json

import requests
from packaging.utils import parse_sdist_filename, parse_wheel_filename
from packaging.version import Version
from twine import __version__ as twine_version
from twine.commands.upload import skip_upload
from twine.package import PackageFile

from app.access.passwords import generate_password
from tests.conftest import require_tool
from tests.pypi import dists
from tests.pypi.conftest import Index, run, sha256sums, twine, uv_names, uv_publish

JSON = "application/vnd.pypi.simple.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def project_of(filename: str) -> str:
    if filename.endswith(".whl"):
        return parse_wheel_filename(filename)[0]
    return parse_sdist_filename(filename)[0]


def listed(index, project: str) -> dict[str, dict]:
    resp = requests.get(
        f"{index.simple}{project}/", auth=index.auth, headers={"Accept": JSON}, timeout=30
    )
    assert resp.status_code == 200, resp.text
    return {f["filename"]: f for f in resp.json()["files"]}


def test_twine_uploads_every_file(twine_uploaded, dist_files):
    sums = sha256sums()
    for path in dist_files:
        files = listed(twine_uploaded, project_of(path.name))
        assert files[path.name]["hashes"]["sha256"] == sums[path.name]
        assert files[path.name]["size"] == path.stat().st_size


def test_uv_publish_uploads_every_file(uv_published, dist_files, tmp_path):
    sums = sha256sums()
    for path in uv_names(dist_files, tmp_path):
        files = listed(uv_published, project_of(path.name))
        assert files[path.name]["hashes"]["sha256"] == sums[path.resolve().name]


def test_identical_reupload_is_accepted(twine_uploaded, testdata, env):
    six = testdata / "six-1.16.0-py2.py3-none-any.whl"
    proc = twine(twine_uploaded, [six, testdata / "six-1.16.0.tar.gz"], env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    resp = dists.upload(twine_uploaded.upload_url, six, "six", "1.16.0", twine_uploaded.auth)
    assert resp.status_code == 200, resp.text


def test_uv_publish_accepts_identical_reupload(uv_published, dist_files, env, tmp_path):
    staged = uv_names([p for p in dist_files if p.name.startswith("zope")], tmp_path)
    proc = uv_publish(uv_published, staged, env)
    assert proc.returncode == 0, proc.stderr


def test_same_filename_other_content_and_skip_existing(main_index, tmp_path, env):
    name = dists.unique("reuse")
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    original = dists.make_wheel(first, name, "1.0")
    changed = dists.make_wheel(second, name, "1.0", extra={"more.txt": b"different bytes"})
    assert original.name == changed.name
    assert twine(main_index, [original], env).returncode == 0

    resp = dists.upload(main_index.upload_url, changed, name, "1.0", main_index.auth)
    assert resp.status_code == 400
    assert resp.reason.startswith("File already exists")
    assert resp.text.startswith("File already exists")

    refused = twine(main_index, [changed], env)
    assert refused.returncode != 0
    assert "File already exists" in refused.stdout + refused.stderr
    # twine >= 6.1 allows the --skip-existing flag for PyPI only, but the decision it makes
    # is this function, applied to the response: ours must read as "already exists".
    assert skip_upload(resp, True, PackageFile.from_filename(str(changed), None))
    assert not skip_upload(resp, False, PackageFile.from_filename(str(changed), None))
    if Version(twine_version) < Version("6.1"):
        skipped = twine(main_index, [changed], env, "--skip-existing")
        assert skipped.returncode == 0, skipped.stdout + skipped.stderr

    # uv's equivalent, --check-url, reads our index: same file skipped, other bytes refused.
    check = ["--check-url", main_index.index_url]
    same = uv_publish(main_index, [original], env, extra=check)
    assert same.returncode == 0 and "already exists, skipping" in same.stderr, same.stderr
    other = uv_publish(main_index, [changed], env, extra=check)
    assert other.returncode != 0 and "do not match" in other.stderr, other.stderr

    # The first upload stands.
    files = listed(main_index, name)
    assert (
        files[original.name]["hashes"]["sha256"]
        == hashlib.sha256(original.read_bytes()).hexdigest()
    )


def test_passwords_starting_with_a_dash_reach_twine_and_uv(server, tmp_path, env):
    """Clients get the password as one `--password=...` argument: `-p "$PW"` reads a password
    starting with "-" as an option (one randomly generated password in 64 did)."""
    user = dists.unique("dash")
    password = "-" + generate_password()
    server.flask("user", "create", user, f"--password={password}")
    server.flask("registry", "grant", "acme", "main", user)
    server.users[user] = password
    index = Index(server, "acme", "main", user)
    name = dists.unique("dashed")
    for i, publish in enumerate((twine, uv_publish)):
        wheel = dists.make_wheel(tmp_path, name, f"1.{i}")
        proc = publish(index, [wheel], env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    assert set(listed(index, name)) == {f"{name}-1.{i}-py3-none-any.whl" for i in (0, 1)}


def test_same_content_under_another_name_is_refused(main_index, tmp_path):
    name = dists.unique("twin")
    wheel = dists.make_wheel(tmp_path, name, "1.0")
    assert dists.upload(main_index.upload_url, wheel, name, "1.0", main_index.auth).ok
    # Same bytes, a filename that differs only in build tag: PyPI refuses identical content.
    other = tmp_path / wheel.name.replace("-1.0-", "-1.0-1-")
    other.write_bytes(wheel.read_bytes())
    resp = dists.upload(main_index.upload_url, other, name, "1.0", main_index.auth)
    assert resp.status_code == 400
    assert "already exists" in resp.reason


def test_second_sdist_for_a_release_is_refused(main_index, tmp_path):
    name = dists.unique("onesdist")
    first = dists.make_sdist(tmp_path, name, "1.0")
    assert dists.upload(main_index.upload_url, first, name, "1.0", main_index.auth).ok
    # 1.0.0 is the same release as 1.0 to every installer.
    second = dists.make_sdist(tmp_path, name, "1.0.0")
    resp = dists.upload(main_index.upload_url, second, name, "1.0.0", main_index.auth)
    assert resp.status_code == 400
    assert "Only one sdist may be uploaded per release" in resp.reason
    # A wheel for the same release is fine.
    wheel = dists.make_wheel(tmp_path, name, "1.0")
    assert dists.upload(main_index.upload_url, wheel, name, "1.0", main_index.auth).ok


def test_upload_answers_on_both_urls_without_redirecting(main_index, tmp_path):
    name = dists.unique("slash")
    for i, url in enumerate((main_index.base, main_index.base + "/")):
        wheel = dists.make_wheel(tmp_path, name, f"1.{i}")
        resp = dists.upload(url, wheel, name, f"1.{i}", main_index.auth)
        assert resp.status_code == 200, resp.text


def test_each_file_is_an_oci_artifact(twine_uploaded, server):
    detail = requests.get(
        f"{twine_uploaded.base}/projects/requests", auth=twine_uploaded.auth, timeout=30
    ).json()
    (wheel,) = [f for f in detail["files"] if f["filename"].endswith(".whl")]
    repo = "acme/main/cargohold.pypi/requests"
    resp = requests.get(
        f"{server.url}/v2/{repo}/manifests/{wheel['manifest_digest']}",
        auth=twine_uploaded.auth,
        headers={"Accept": OCI_MANIFEST},
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    manifest = json.loads(resp.content)
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["artifactType"] == "application/vnd.python.artifact"
    (layer,) = manifest["layers"]
    assert layer["digest"] == f"sha256:{sha256sums()[wheel['filename']]}"
    assert layer["annotations"]["org.opencontainers.image.title"] == wheel["filename"]
    notes = manifest["annotations"]
    assert notes["org.opencontainers.image.title"] == wheel["filename"]
    assert notes["org.python.core-metadata.name"] == "requests"
    assert notes["org.python.core-metadata.version"] == "2.32.3"
    assert notes["org.python.core-metadata.requires-python"] == ">=3.8"
    assert "idna <4,>=2.5" in notes["org.python.core-metadata.requires-dist"].splitlines()
    assert "org.python.core-metadata.description" not in notes
    # The config blob is the METADATA file PEP 658 serves.
    config = requests.get(
        f"{server.url}/v2/{repo}/blobs/{manifest['config']['digest']}",
        auth=twine_uploaded.auth,
        timeout=30,
    )
    served = requests.get(
        f"{twine_uploaded.base}/files/requests/{wheel['filename']}.metadata",
        auth=twine_uploaded.auth,
        timeout=30,
    )
    assert config.content == served.content
    assert manifest["config"]["mediaType"] == "application/vnd.python.core-metadata"


def test_oras_pull_gives_back_the_identical_file(twine_uploaded, server, tmp_path):
    oras = require_tool("oras")
    filename = "requests-2.32.3-py3-none-any.whl"
    ref = f"{server.host}/acme/main/cargohold.pypi/requests:{filename}"
    proc = run(
        [oras, "pull", "--plain-http", "-u", "alice", "-p", server.users["alice"], ref],
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path,
    )
    pulled = tmp_path / filename
    assert pulled.exists(), proc.stdout + proc.stderr
    assert hashlib.sha256(pulled.read_bytes()).hexdigest() == sha256sums()[filename]


def test_oci_pushes_into_the_python_namespace_are_denied(twine_uploaded, server):
    repo = f"{server.url}/v2/acme/main/cargohold.pypi/requests"
    start = requests.post(f"{repo}/blobs/uploads/", auth=twine_uploaded.auth, timeout=30)
    assert start.status_code == 403, start.text
    assert start.json()["errors"][0]["code"] == "DENIED"
    detail = requests.get(
        f"{twine_uploaded.base}/projects/requests", auth=twine_uploaded.auth, timeout=30
    ).json()
    digest = detail["files"][0]["manifest_digest"]
    gone = requests.delete(f"{repo}/manifests/{digest}", auth=twine_uploaded.auth, timeout=30)
    assert gone.status_code == 403
    # Pulls stay open.
    pulled = requests.get(
        f"{repo}/manifests/{digest}",
        auth=twine_uploaded.auth,
        headers={"Accept": OCI_MANIFEST},
        timeout=30,
    )
    assert pulled.status_code == 200
