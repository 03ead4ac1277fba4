"""Bad uploads: each a 4xx with a reason, and nothing stored."""

from __future__ import annotations

import contextlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest
import requests

from tests.pypi import dists


def _stored(server) -> set[str]:
    """Every blob the database knows, and every object in the store, whatever the backend."""
    known = {f"row:{digest}" for (digest,) in server.sql("SELECT digest FROM blobs")}
    root = server.data_dir / "storage"
    if server.env.get("CARGOHOLD_STORAGE", "filesystem") == "filesystem":
        return known | {
            str(p.relative_to(root))
            for sub in ("blobs", "uploads")
            for p in (root / sub).rglob("*")
            if p.is_file()
        }
    from tests.support.services import load

    services = load()
    assert services is not None
    return known | set(services.keys(server.env["CARGOHOLD_S3_PREFIX"]))


@contextlib.contextmanager
def nothing_stored(index, project: str):
    before = _stored(index.server)
    yield
    assert _stored(index.server) == before, "a refused upload left content in the store"
    for url in (f"{index.simple}{project}/", f"{index.base}/projects/{project}"):
        assert requests.get(url, auth=index.auth, timeout=30).status_code == 404, url
    tmp = index.server.data_dir / "tmp"
    assert not tmp.exists() or not any(tmp.iterdir()), "the upload spool was left behind"


def assert_refused(resp: requests.Response, status: int, phrase: str) -> None:
    assert resp.status_code == status, (resp.status_code, resp.text)
    assert phrase in resp.reason, resp.reason
    assert phrase in resp.text
    assert resp.headers["Content-Type"].startswith("text/plain")


# Each case builds a file in `folder` for project `name` and returns (path, form overrides).
def mismatched_version(folder, name):
    return dists.make_wheel(folder, name, "1.0", meta=dists.metadata(name, "2.0")), {}


def mismatched_name(folder, name):
    return dists.make_wheel(folder, name, "1.0", meta=dists.metadata("someone-else", "1.0")), {}


def corrupt_zip(folder, name):
    path = dists.make_wheel(folder, name, "1.0", extra={"blob.bin": os.urandom(4096)})
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("blob.bin")
    # Flip bytes inside the member's data: the archive still opens, its CRC no longer matches.
    start = info.header_offset + 30 + len(info.filename) + 100
    data[start : start + 8] = bytes(b ^ 0xFF for b in data[start : start + 8])
    path.write_bytes(bytes(data))
    return path, {}


def not_a_zip(folder, name):
    path = folder / f"{name}-1.0-py3-none-any.whl"
    path.write_bytes(os.urandom(2048))
    return path, {}


def zip_bomb(folder, name):
    path = dists.make_wheel(folder, name, "1.0")
    zeros = bytes(1024 * 1024)
    with (
        zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED, compresslevel=9) as zf,
        zf.open("bomb.bin", "w") as w,
    ):
        for _ in range(200):
            w.write(zeros)
    assert path.stat().st_size < 1024 * 1024
    return path, {}


def tar_with_dotdot(folder, name):
    return dists.make_sdist(folder, name, "1.0", extra={"../../evil.txt": b"escaped"}), {}


def tar_with_escaping_link(folder, name):
    path = dists.make_sdist(folder, name, "1.0")
    link = tarfile.TarInfo(f"{name}-1.0/passwd")
    link.type, link.linkname = tarfile.SYMTYPE, "../../../etc/passwd"
    raw = io.BytesIO()
    with tarfile.open(path) as src, tarfile.open(fileobj=raw, mode="w:gz") as dst:
        for member in src.getmembers():
            dst.addfile(member, src.extractfile(member))
        dst.addfile(link)
    path.write_bytes(raw.getvalue())
    return path, {}


def zip_named_tar_gz(folder, name):
    path = folder / f"{name}-1.0.tar.gz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}-1.0/PKG-INFO", dists.metadata(name, "1.0"))
    return path, {}


def missing_digest(folder, name):
    return dists.make_wheel(folder, name), {"sha256_digest": None, "blake2_256_digest": None}


def wrong_sha256(folder, name):
    return dists.make_wheel(folder, name), {"sha256_digest": "0" * 64}


def wrong_blake2(folder, name):
    return dists.make_wheel(folder, name), {"blake2_256_digest": "ab" * 32}


def wrong_md5(folder, name):
    return dists.make_wheel(folder, name), {"md5_digest": "0" * 32}


def name_failing_regex(folder, name):
    return dists.make_wheel(folder, name), {"name": f"{name}_"}


def bad_extension(folder, name):
    path = dists.make_wheel(folder, name)
    return path.rename(path.with_name(f"{name}-1.0.zip")), {"filetype": "sdist"}


def filetype_disagrees(folder, name):
    return dists.make_wheel(folder, name), {"filetype": "sdist"}


def unsupported_metadata_version(folder, name):
    meta = dists.metadata(name, "1.0", metadata_version="3.0")
    return dists.make_wheel(folder, name, meta=meta), {}


def invalid_requires_python(folder, name):
    meta = dists.metadata(name, "1.0", requires_python=">=3.8,,<4!")
    return dists.make_wheel(folder, name, meta=meta), {}


def wheel_without_dist_info_match(folder, name):
    path = folder / f"{name}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("other-1.0.dist-info/METADATA", dists.metadata(name, "1.0"))
        zf.writestr("other-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    return path, {}


def wrong_action(folder, name):
    return dists.make_wheel(folder, name), {":action": "submit"}


CASES = {
    # case: (builder, status, phrase the reason must contain)
    "filename-disagrees-with-metadata-version": (
        mismatched_version,
        400,
        "Version in METADATA ('2.0') does not match the filename",
    ),
    "filename-disagrees-with-metadata-name": (
        mismatched_name,
        400,
        "Name in METADATA ('someone-else') does not match the filename",
    ),
    "corrupt-zip": (corrupt_zip, 400, "corrupt zip archive"),
    "not-a-zip": (not_a_zip, 400, "is not a zip archive"),
    "zip-bomb": (zip_bomb, 400, "compression bomb"),
    "tar-with-dotdot": (tar_with_dotdot, 400, "unsafe member path"),
    "tar-with-escaping-symlink": (tar_with_escaping_link, 400, "points outside the archive"),
    "zip-named-tar-gz": (zip_named_tar_gz, 400, "is not gzip-compressed"),
    "missing-digest": (missing_digest, 400, "Include at least one message digest"),
    "wrong-sha256": (wrong_sha256, 400, "The digest supplied does not match"),
    "wrong-blake2": (wrong_blake2, 400, "The digest supplied does not match"),
    "wrong-md5": (wrong_md5, 400, "The digest supplied does not match"),
    "name-fails-regex": (name_failing_regex, 400, "is an invalid value for Name"),
    "bad-extension": (bad_extension, 400, "Invalid file extension"),
    "filetype-disagrees": (filetype_disagrees, 400, "Invalid file extension for filetype"),
    "metadata-version-3": (unsupported_metadata_version, 400, "unsupported Metadata-Version"),
    "bad-requires-python": (invalid_requires_python, 400, "invalid value for Requires-Python"),
    "dist-info-of-another-project": (
        wheel_without_dist_info_match,
        400,
        "exactly one .dist-info directory",
    ),
    "wrong-action": (wrong_action, 400, "only file_upload is supported"),
}


@pytest.mark.parametrize("case", CASES)
def test_bad_upload_is_refused_with_a_reason(case, main_index, tmp_path: Path):
    builder, status, phrase = CASES[case]
    name = dists.unique("bad")
    path, override = builder(tmp_path, name)
    with nothing_stored(main_index, name):
        resp = dists.upload(main_index.upload_url, path, name, "1.0", main_index.auth, **override)
        assert_refused(resp, status, phrase)


def test_twine_refused_for_a_renamed_wheel(main_index, testdata, tmp_path, env):
    from tests.pypi.conftest import twine

    renamed = tmp_path / "six-1.17.0-py2.py3-none-any.whl"
    renamed.write_bytes((testdata / "six-1.16.0-py2.py3-none-any.whl").read_bytes())
    proc = twine(main_index, [renamed], env)
    assert proc.returncode != 0
    assert "Version in filename should be '1.16.0' not '1.17.0'" in proc.stdout + proc.stderr


def test_md5_alone_is_enough(main_index, tmp_path):
    import hashlib

    name = dists.unique("md5only")
    wheel = dists.make_wheel(tmp_path, name)
    md5 = hashlib.md5(wheel.read_bytes()).hexdigest()
    resp = dists.upload(
        main_index.upload_url,
        wheel,
        name,
        "1.0",
        main_index.auth,
        sha256_digest=None,
        blake2_256_digest=None,
        md5_digest=md5,
    )
    assert resp.status_code == 200, resp.text


def test_not_multipart(main_index):
    resp = requests.post(main_index.upload_url, data=b"{}", auth=main_index.auth, timeout=30)
    assert_refused(resp, 400, "multipart/form-data")


@pytest.mark.parametrize(
    ("user", "password", "status"),
    [
        (None, None, 401),
        ("alice", "wrong-password", 401),
        ("victor", None, 403),  # viewer of acme
        ("mallory", None, 403),  # admin of another organisation
    ],
)
def test_upload_needs_a_writer(user, password, status, main_index, tmp_path):
    name = dists.unique("authz")
    wheel = dists.make_wheel(tmp_path, name)
    auth = (user, password or main_index.server.users[user]) if user else None
    with nothing_stored(main_index, name):
        resp = dists.upload(main_index.upload_url, wheel, name, "1.0", auth)
        assert resp.status_code == status, resp.text
        assert resp.reason and resp.text.strip()
        if status == 401:
            assert resp.headers["WWW-Authenticate"].startswith("Basic realm=")
