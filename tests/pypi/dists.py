"""Synthetic wheels and sdists, good and bad, and a raw upload speaking twine's form."""

from __future__ import annotations

import base64
import hashlib
import io
import tarfile
import uuid
import zipfile
from pathlib import Path

import requests


def unique(prefix: str) -> str:
    """A project name no other test uses, so tests share one server without meeting."""
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def metadata(
    name: str,
    version: str,
    *,
    metadata_version: str = "2.1",
    requires_python: str | None = None,
    summary: str = "A test package",
    requires_dist: tuple[str, ...] = (),
) -> str:
    lines = [f"Metadata-Version: {metadata_version}", f"Name: {name}", f"Version: {version}"]
    lines.append(f"Summary: {summary}")
    if requires_python:
        lines.append(f"Requires-Python: {requires_python}")
    lines += [f"Requires-Dist: {r}" for r in requires_dist]
    return "\n".join(lines) + "\n\nLong description.\n"


def _record(members: dict[str, bytes], record_name: str) -> bytes:
    rows = []
    for name, data in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        rows.append(f"{name},sha256={digest},{len(data)}")
    rows.append(f"{record_name},,")
    return ("\n".join(rows) + "\n").encode()


def make_wheel(
    folder: Path,
    name: str,
    version: str = "1.0",
    *,
    filename: str | None = None,
    meta: str | None = None,
    module: str | None = None,
    extra: dict[str, bytes] | None = None,
    **meta_options,
) -> Path:
    """A pure-Python wheel pip can install: one module, METADATA, WHEEL and RECORD."""
    escaped = name.replace("-", "_").replace(".", "_")
    dist_info = f"{escaped}-{version}.dist-info"
    module = module or escaped
    members: dict[str, bytes] = {
        f"{module}.py": f"VERSION = {version!r}\n".encode(),
        f"{dist_info}/METADATA": (meta or metadata(name, version, **meta_options)).encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: cargohold-tests\nRoot-Is-Purelib: true\n"
            b"Tag: py3-none-any\n"
        ),
    }
    members.update(extra or {})
    members[f"{dist_info}/RECORD"] = _record(members, f"{dist_info}/RECORD")
    path = folder / (filename or f"{escaped}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, data in members.items():
            zf.writestr(member, data)
    return path


def make_sdist(
    folder: Path,
    name: str,
    version: str = "1.0",
    *,
    filename: str | None = None,
    top: str | None = None,
    pkg_info: str | None = None,
    extra: dict[str, bytes] | None = None,
) -> Path:
    escaped = name.replace("-", "_").replace(".", "_")
    top = top or f"{escaped}-{version}"
    members = {
        f"{top}/PKG-INFO": (pkg_info or metadata(name, version)).encode(),
        f"{top}/{escaped}.py": b"",
    }
    members.update(extra or {})
    path = folder / (filename or f"{escaped}-{version}.tar.gz")
    with tarfile.open(path, "w:gz") as tf:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def form_for(path: Path, project: str, release: str, **override: str | None) -> dict[str, str]:
    """The fields twine would send for `path`; None in `override` drops a field."""
    data = path.read_bytes()
    wheel = path.name.endswith(".whl")
    fields: dict[str, str | None] = {
        ":action": "file_upload",
        "protocol_version": "1",
        "metadata_version": "2.1",
        "name": project,
        "version": release,
        "filetype": "bdist_wheel" if wheel else "sdist",
        "pyversion": "py3" if wheel else "source",
        "summary": "A test package",
        "sha256_digest": hashlib.sha256(data).hexdigest(),
        "blake2_256_digest": hashlib.blake2b(data, digest_size=32).hexdigest(),
    }
    fields.update(override)
    return {k: v for k, v in fields.items() if v is not None}


def upload(
    url: str,
    path: Path,
    project: str,
    release: str,
    auth: tuple[str, str] | None,
    **override: str | None,
) -> requests.Response:
    with open(path, "rb") as f:
        return requests.post(
            url,
            data=form_for(path, project, release, **override),
            files={"content": (path.name, f, "application/octet-stream")},
            auth=auth,
            allow_redirects=False,
            timeout=120,
        )


def repack_installed(dist_name: str, folder: Path) -> Path:
    """A wheel rebuilt from a distribution installed in this test environment.

    The sdist tests need build tooling (setuptools and wheel) in the index, and must not fetch
    it from anywhere else while they run; the installed files are the wheel's own contents.
    """
    from importlib.metadata import distribution

    dist = distribution(dist_name)
    root = Path(str(dist.locate_file("")))
    dist_info = f"{dist.metadata['Name'].replace('-', '_')}-{dist.version}.dist-info"
    skipped = {"INSTALLER", "REQUESTED", "direct_url.json", "RECORD"}
    members: dict[str, bytes] = {}
    for entry in dist.files or []:
        name = str(entry)
        if name.startswith("..") or "__pycache__" in name or name.split("/")[-1] in skipped:
            continue
        members[name] = (root / name).read_bytes()
    members[f"{dist_info}/RECORD"] = _record(members, f"{dist_info}/RECORD")
    path = folder / f"{dist_info.removesuffix('.dist-info')}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path
