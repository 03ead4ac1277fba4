"""The Python test data fetches itself: pinned by hash, copied from a pre-filled folder only where
the hashes match, downloaded with pip otherwise, and refused when pip's bytes do not match."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.pypi import testdata as pinned

SMALL = ("zope.event-5.0-py3-none-any.whl", "zope.event-5.0.tar.gz")


@pytest.fixture
def empty_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("CARGOHOLD_TESTDATA_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CARGOHOLD_PYTHON_TESTDATA", raising=False)
    return tmp_path / "cache" / "python"


def only(monkeypatch, names: tuple[str, ...], digest: str | None = None) -> None:
    """Pin just these files (with another digest, when given)."""
    sums = {n: digest or d for n, d in pinned.locked().items() if n in names}
    monkeypatch.setattr(pinned, "locked", lambda: sums)


def test_lock_pins_what_the_tests_use(dist_files):
    assert {p.name for p in dist_files} == set(pinned.locked())
    for path in dist_files:
        assert pinned.sha256(path) == pinned.locked()[path.name]


def test_pip_is_told_exactly_which_file():
    assert pinned._pip_options("six-1.16.0.tar.gz") == ("--no-binary", "six")
    assert pinned._pip_options("six-1.16.0-py2.py3-none-any.whl") == ("--only-binary", ":all:")
    numpy = "numpy-2.1.3-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    assert pinned._pip_options(numpy) == (
        *("--only-binary", ":all:", "--implementation", "cp", "--python-version", "311"),
        *("--abi", "cp311", "--platform", "manylinux2014_x86_64"),
        *("--platform", "manylinux_2_17_x86_64"),
    )


def test_a_prefilled_folder_is_used_only_where_hashes_match(
    testdata, empty_cache, tmp_path, monkeypatch
):
    seed = tmp_path / "seed"
    seed.mkdir()
    good, tampered = "six-1.16.0.tar.gz", "idna-3.10-py3-none-any.whl"
    shutil.copy(testdata / good, seed / good)
    (seed / tampered).write_bytes(b"not the pinned wheel")
    monkeypatch.setenv("CARGOHOLD_PYTHON_TESTDATA", str(seed))
    asked: list[str] = []

    def download(cache: Path, wanted: dict[str, str]) -> None:
        asked.extend(wanted)
        for name in wanted:
            shutil.copy(testdata / name, cache / name)

    monkeypatch.setattr(pinned, "_download", download)
    assert pinned.ensure() == empty_cache
    assert sorted(asked) == sorted(set(pinned.locked()) - {good})
    assert [p.name for p in pinned.files(empty_cache)] == sorted(pinned.locked())
    # Filled: nothing more is fetched.
    asked.clear()
    pinned.ensure()
    assert asked == []


def fetch_or_skip() -> Path:
    """As the testdata fixture: an unreachable package index fails in CI and skips elsewhere."""
    return pinned.required(pinned.ensure, "the pinned packages (package index)")


def test_pip_downloads_a_wheel_and_an_sdist(empty_cache, monkeypatch):
    only(monkeypatch, SMALL)
    folder = fetch_or_skip()
    for name in SMALL:
        assert pinned.sha256(folder / name) == pinned.locked()[name]


def test_a_file_that_does_not_match_its_hash_is_refused(empty_cache, monkeypatch):
    only(monkeypatch, SMALL[:1], digest="0" * 64)
    with pytest.raises(pinned.MissingTestData, match="(?i)hash"):
        pinned.ensure()
    assert not (empty_cache / SMALL[0]).exists()
