"""Real PEP 740 attestations for the tests: the ones pypi-attestations tests itself with, signed
in GitHub Actions and GitLab CI against Sigstore's production instance. Its sdist (pinned in
attestations.lock) is fetched like the other test data, and the assets are extracted beside it
and checked against their own pins.

Run `python -m tests.pypi.attestation_assets` to fetch them ahead of a test run.
"""

from __future__ import annotations

import os
import tarfile
from pathlib import Path

from tests.pypi import testdata

LOCK = Path(__file__).with_name("attestations.lock")
ASSETS = "test/assets/"


def _pins() -> tuple[tuple[str, str], dict[str, str]]:
    pins = list(testdata.read_lock(LOCK).items())
    return pins[0], dict(pins[1:])


def folder() -> Path:
    return testdata.cache_dir().parent / "attestations"


def ensure() -> Path:
    """The folder holding every pinned asset; MissingTestData when they cannot be had."""
    (sdist, sdist_sha), assets = _pins()
    out = folder()
    out.mkdir(parents=True, exist_ok=True)
    if all(testdata._intact(out / n, d) for n, d in assets.items()):
        return out
    cache = testdata.ensure(wanted={sdist: sdist_sha})
    top = sdist.removesuffix(".tar.gz")
    with tarfile.open(cache / sdist) as tar:
        for name, digest in assets.items():
            member = tar.getmember(f"{top}/{ASSETS}{name}")
            source = tar.extractfile(member)
            if source is None:
                raise testdata.MissingTestData(f"{name} is not a file in {sdist}")
            part = out / f".{name}.{os.getpid()}.part"
            part.write_bytes(source.read())
            if testdata.sha256(part) != digest:
                part.unlink()
                raise testdata.MissingTestData(f"{name} in {sdist} does not match its pin")
            os.replace(part, out / name)
    return out


if __name__ == "__main__":
    print(ensure())
