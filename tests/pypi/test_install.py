"""pip and uv against Cargohold alone: installs, downloads, credentials, yanking, deletion."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import requests

from tests.pypi import dists
from tests.pypi.conftest import BIN, REQUESTS_CLOSURE, make_venv, run, sha256sums

JSON = "application/vnd.pypi.simple.v1+json"


def installed(py: Path, env) -> dict[str, str]:
    out = run([str(py), "-m", "pip", "list", "--format=freeze"], env).stdout
    pairs = (line.split("==") for line in out.splitlines() if "==" in line)
    return {name.lower().replace("_", "-"): version for name, version in pairs}


def only_from(server, output: str) -> None:
    """Every URL a client printed is Cargohold's: no other index was consulted."""
    urls = re.findall(r"https?://[^\s)'\"]+", re.sub(r"//[^/@\s]+@", "//", output))
    assert urls, output
    assert all(u.startswith(server.url) for u in urls), [u for u in urls if server.url not in u]


def test_pip_install_requests(twine_uploaded, server, tmp_path, env):
    py = make_venv(tmp_path / "venv", env)
    proc = run(
        [str(py), "-m", "pip", "install", "--index-url", twine_uploaded.index_url, "requests"],
        env,
    )
    only_from(server, proc.stdout)
    # PEP 658: pip resolved from the .metadata files before downloading wheels.
    assert ".whl.metadata" in proc.stdout
    versions = installed(py, env)
    assert set(versions) >= REQUESTS_CLOSURE
    assert versions["requests"] == "2.32.3"
    run([str(py), "-c", "import requests; assert requests.__version__ == '2.32.3'"], env)


@pytest.mark.parametrize("uploaded", ["twine_uploaded", "uv_published"])
def test_uv_pip_install_requests(request, uploaded, tmp_path, env):
    index = request.getfixturevalue(uploaded)
    py = make_venv(tmp_path / "venv", env)
    proc = run(
        [
            str(BIN / "uv"),
            "pip",
            "install",
            "--python",
            str(py),
            "--index-url",
            index.index_url,
            "requests",
        ],
        env,
    )
    versions = installed(py, env)
    assert set(versions) >= REQUESTS_CLOSURE, proc.stderr
    run([str(py), "-c", "import requests, idna, urllib3, certifi, charset_normalizer"], env)


def test_pip_download_sdists(build_tools, tmp_path, env):
    py = make_venv(tmp_path / "venv", env)
    out = tmp_path / "out"
    run(
        [
            str(py),
            "-m",
            "pip",
            "download",
            "--no-deps",
            # Source distributions of these three; the build tools may come as wheels.
            "--no-binary",
            "six,pytz,zope.event",
            # pip builds each sdist's metadata in an isolated environment: setuptools and
            # wheel come from Cargohold too (the build_tools fixture put them there).
            "--index-url",
            build_tools.index_url,
            "-d",
            str(out),
            "six==1.16.0",
            "pytz==2024.2",
            "zope.event==5.0",
        ],
        env,
    )
    sums = sha256sums()
    got = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in out.iterdir()}
    assert got == {
        n: sums[n] for n in ("six-1.16.0.tar.gz", "pytz-2024.2.tar.gz", "zope.event-5.0.tar.gz")
    }


def test_credentials_from_netrc(twine_uploaded, tmp_path, home, env):
    netrc = home / ".netrc"
    netrc.write_text(f"machine 127.0.0.1 login alice password {twine_uploaded.password}\n")
    netrc.chmod(0o600)
    py = make_venv(tmp_path / "venv", env)
    plain = twine_uploaded.simple  # no credentials in the URL
    pip = [str(py), "-m", "pip", "download", "--no-deps", "--index-url", plain]
    run([*pip, "-d", str(tmp_path / "pip"), "six==1.16.0", "--only-binary", ":all:"], env)
    assert (tmp_path / "pip" / "six-1.16.0-py2.py3-none-any.whl").exists()
    run(
        [str(BIN / "uv"), "pip", "install", "--python", str(py), "--index-url", plain, "six"],
        env,
    )
    assert installed(py, env)["six"] == "1.16.0"


def test_public_registry_installs_anonymously(server, tmp_path, env):
    from tests.pypi.conftest import Index

    public = Index(server, "acme", "public")
    name = dists.unique("anon")
    wheel = dists.make_wheel(tmp_path, name, "1.0")
    assert dists.upload(public.upload_url, wheel, name, "1.0", public.auth).ok
    py = make_venv(tmp_path / "venv", env)
    run([str(py), "-m", "pip", "install", "--index-url", public.as_user(None).simple, name], env)
    assert installed(py, env)[name] == "1.0"
    # The private registry refuses the same anonymous client.
    private = Index(server, "acme", "main", None)
    refused = run(
        [str(py), "-m", "pip", "download", "--index-url", private.simple, "six"],
        env,
        check=False,
    )
    # pip without a prompt takes the 401 for an empty page (test_simple_api checks the 401).
    assert refused.returncode != 0
    assert "from versions: none" in refused.stderr


def _pip_download(py: Path, index, spec: str, dest: Path, env) -> tuple[str, list[str]]:
    proc = run(
        [
            str(py),
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--index-url",
            index.index_url,
            "-d",
            str(dest),
            spec,
        ],
        env,
    )
    return proc.stdout + proc.stderr, sorted(p.name for p in dest.iterdir())


def test_yank_as_seen_by_pip_and_uv(main_index, server, tmp_path, env):
    name = dists.unique("yank")
    for version in ("1.0", "2.0"):
        wheel = dists.make_wheel(tmp_path, name, version)
        assert dists.upload(main_index.upload_url, wheel, name, version, main_index.auth).ok
    yank_url = f"{main_index.base}/projects/{name}/releases/2.0/yank"
    viewer = main_index.as_user("victor")
    assert requests.post(yank_url, json={}, auth=viewer.auth).status_code == 403
    resp = requests.post(yank_url, json={"reason": "broken build"}, auth=main_index.auth)
    assert resp.status_code == 200, resp.text
    assert [f["yanked_reason"] for f in resp.json()["files"]] == ["broken build"]

    page = requests.get(f"{main_index.simple}{name}/", auth=main_index.auth).text
    assert 'data-yanked="broken build"' in page
    doc = requests.get(
        f"{main_index.simple}{name}/", auth=main_index.auth, headers={"Accept": JSON}
    ).json()
    assert [f["yanked"] for f in doc["files"]] == [False, "broken build"]
    assert doc["versions"] == ["1.0", "2.0"]

    py = make_venv(tmp_path / "venv", env)
    _, files = _pip_download(py, main_index, name, tmp_path / "a", env)
    assert files == [f"{name}-1.0-py3-none-any.whl"]
    out, files = _pip_download(py, main_index, f"{name}==2.0", tmp_path / "b", env)
    assert files == [f"{name}-2.0-py3-none-any.whl"]
    assert "yanked" in out and "broken build" in out

    uv = [str(BIN / "uv"), "pip", "install", "--python", str(py), "--index-url"]
    run([*uv, main_index.index_url, name], env)
    assert installed(py, env)[name] == "1.0"
    pinned = run([*uv, main_index.index_url, f"{name}==2.0"], env)
    assert installed(py, env)[name] == "2.0"
    assert "yanked" in pinned.stderr

    server.flask("python", "unyank", "acme/main", name, "--version", "2.0")
    _, files = _pip_download(py, main_index, name, tmp_path / "c", env)
    assert files == [f"{name}-2.0-py3-none-any.whl"]
    # One file can be yanked too, from the command line, without a reason.
    server.flask("python", "yank", "acme/main", name, "--file", f"{name}-2.0-py3-none-any.whl")
    _, files = _pip_download(py, main_index, name, tmp_path / "d", env)
    assert files == [f"{name}-1.0-py3-none-any.whl"]
    page = requests.get(f"{main_index.simple}{name}/", auth=main_index.auth).text
    assert 'data-yanked=""' in page


def test_deleted_filenames_are_never_reused(main_index, server, tmp_path):
    name = dists.unique("gone")
    wheel = dists.make_wheel(tmp_path, name, "1.0")
    sdist = dists.make_sdist(tmp_path, name, "1.0")
    for path in (wheel, sdist):
        assert dists.upload(main_index.upload_url, path, name, "1.0", main_index.auth).ok
    detail = requests.get(f"{main_index.base}/projects/{name}", auth=main_index.auth).json()
    digest = {f["filename"]: f["manifest_digest"] for f in detail["files"]}[wheel.name]
    manifest_url = f"{server.url}/v2/acme/main/cargohold.pypi/{name}/manifests/{digest}"
    assert requests.get(manifest_url, auth=main_index.auth).status_code == 200

    file_url = f"{main_index.base}/projects/{name}/files/{wheel.name}"
    viewer = main_index.as_user("victor")
    assert requests.delete(file_url, auth=viewer.auth).status_code == 403
    resp = requests.delete(file_url, auth=main_index.auth)
    assert resp.status_code == 200, resp.text
    assert resp.json()["files"][0]["deleted"] is True

    page = requests.get(f"{main_index.simple}{name}/", auth=main_index.auth).text
    assert wheel.name not in page and sdist.name in page
    download = f"{main_index.base}/files/{name}/{wheel.name}"
    assert requests.get(download, auth=main_index.auth).status_code == 404
    assert requests.get(download + ".metadata", auth=main_index.auth).status_code == 404
    assert requests.get(manifest_url, auth=main_index.auth).status_code == 404

    again = dists.upload(main_index.upload_url, wheel, name, "1.0", main_index.auth)
    assert again.status_code == 400
    assert "filename has already been used" in again.reason

    server.flask("python", "delete", "acme/main", name, "--version", "1.0", "--yes")
    assert requests.get(f"{main_index.simple}{name}/", auth=main_index.auth).status_code == 404
    index = requests.get(main_index.simple, auth=main_index.auth).text
    assert f">{name}<" not in index
    # A deleted sdist's filename is spent too, and so the release may get a new one.
    spent = dists.upload(main_index.upload_url, sdist, name, "1.0", main_index.auth)
    assert spent.status_code == 400
