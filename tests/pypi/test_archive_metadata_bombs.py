"""Archives whose metadata is the bomb: a few hundred KiB that declare hundreds of MiB of
long name, pax header or central directory. Refused with a reason, and without the memory."""

from __future__ import annotations

import gzip
import io
import struct
import tarfile
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from app.pypi import distributions
from app.pypi.errors import PyPIError
from tests.pypi import dists
from tests.pypi.test_bad_input import assert_refused, nothing_stored

MiB = 1024 * 1024


def _header(name: str, typeflag: bytes, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.type = typeflag
    info.size = size
    return info.tobuf(format=tarfile.GNU_FORMAT)


def bomb_sdist(folder: Path, name: str, typeflag: bytes, declared: int = 256 * MiB) -> Path:
    """A gzip stream whose first tar header declares `declared` bytes of extended header data
    (all zeros, so it compresses about 1000:1), followed by an ordinary sdist."""
    escaped = name.replace("-", "_")
    path = folder / f"{escaped}-1.0.tar.gz"
    header = _header("././@LongLink" if typeflag != tarfile.XHDTYPE else "pax", typeflag, declared)
    zeros = bytes(MiB)
    with gzip.open(path, "wb", compresslevel=9) as gz:
        gz.write(header[:512])
        for _ in range(declared // MiB):
            gz.write(zeros)
        gz.write(bytes(-declared % 512))
        normal = io.BytesIO()
        with tarfile.open(fileobj=normal, mode="w") as tf:
            data = dists.metadata(name, "1.0").encode()
            info = tarfile.TarInfo(f"{escaped}-1.0/PKG-INFO")
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        gz.write(normal.getvalue())
    return path


def chained_long_names(folder: Path, name: str, count: int = 10_000) -> Path:
    """Thousands of small GNU long-name headers in a row: tarfile recurses once for each."""
    escaped = name.replace("-", "_")
    path = folder / f"{escaped}-1.0.tar.gz"
    one = _header("././@LongLink", tarfile.GNUTYPE_LONGNAME, 100)[:512] + bytes(512)
    with gzip.open(path, "wb") as gz:
        for _ in range(count):
            gz.write(one)
        gz.write(bytes(1024))
    return path


def central_directory_bomb(folder: Path, name: str, entries: int = 150_000) -> Path:
    """A wheel whose central directory lists hundreds of thousands of entries."""
    path = dists.make_wheel(folder, name, "1.0")
    original = path.read_bytes()
    with zipfile.ZipFile(path) as zf:
        first = zf.infolist()[0]
    record = struct.pack(
        "<4s4B4HL2L5H2L",
        zipfile.stringCentralDir,
        20,
        3,
        20,
        0,
        0,
        0,
        0,
        0,
        first.CRC,
        first.compress_size,
        first.file_size,
        1,
        0,
        0,
        0,
        0,
        0,
        first.header_offset,
    )
    body_end = original.index(zipfile.stringCentralDir)
    directory = b"".join(record + b"%c" % (97 + i % 26) for i in range(entries))
    end = struct.pack(
        "<4s4H2LH",
        zipfile.stringEndArchive,
        0,
        0,
        0xFFFF,
        0xFFFF,
        len(directory),
        body_end,
        0,
    )
    path.write_bytes(original[:body_end] + directory + end)
    return path


def _peak_while(call) -> int:
    tracemalloc.start()
    try:
        call()
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize(
    ("builder", "phrase"),
    [
        (lambda f, n: bomb_sdist(f, n, tarfile.GNUTYPE_LONGNAME), "extended tar header"),
        (lambda f, n: bomb_sdist(f, n, tarfile.GNUTYPE_LONGLINK), "extended tar header"),
        (lambda f, n: bomb_sdist(f, n, tarfile.XHDTYPE), "extended tar header"),
        (chained_long_names, "too many extended tar headers"),
    ],
    ids=["gnu-long-name", "gnu-long-link", "pax-header", "chained-long-names"],
)
def test_sdist_metadata_bomb_is_refused_without_the_memory(builder, phrase, tmp_path):
    name = dists.unique("bomb")
    path = builder(tmp_path, name)
    assert path.stat().st_size < 512 * 1024
    dist = distributions.parse_filename(path.name)
    with open(path, "rb") as f:

        def check():
            with pytest.raises(PyPIError, match=phrase):
                distributions.sdist_metadata(f, path.stat().st_size, dist)

        peak = _peak_while(check)
    # The declared 256 MiB is never allocated; the gzip and tar buffers are all that is.
    assert peak < 4 * MiB, peak


def test_zip_central_directory_bomb_is_refused_without_the_memory(tmp_path):
    name = dists.unique("cdbomb")
    path = central_directory_bomb(tmp_path, name)
    dist = distributions.parse_filename(path.name)
    with open(path, "rb") as f:

        def check():
            with pytest.raises(PyPIError, match="too many archive members"):
                distributions.wheel_metadata(f, path.stat().st_size, dist)

        peak = _peak_while(check)
    # Counting reads the directory (7 MiB here) once; zipfile would build 150,000 objects.
    assert peak < 2 * path.stat().st_size, peak


@pytest.mark.parametrize("typeflag", [tarfile.GNUTYPE_LONGNAME, tarfile.XHDTYPE])
def test_sdist_metadata_bomb_upload_gets_a_reason(typeflag, main_index, tmp_path):
    name = dists.unique("bomb")
    path = bomb_sdist(tmp_path, name, typeflag)
    with nothing_stored(main_index, name):
        resp = dists.upload(main_index.upload_url, path, name, "1.0", main_index.auth)
        assert_refused(resp, 400, "extended tar header declares 268435456 bytes")


def test_ordinary_sdist_with_long_names_still_accepted(main_index, tmp_path):
    name = dists.unique("longnames")
    escaped = name.replace("-", "_")
    deep = f"{escaped}-1.0/" + "/".join(["d" * 60] * 5) + "/module.py"
    path = dists.make_sdist(tmp_path, name, "1.0", extra={deep: b"x = 1\n"})
    resp = dists.upload(main_index.upload_url, path, name, "1.0", main_index.auth)
    assert resp.status_code == 200, resp.text
