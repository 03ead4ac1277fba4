"""Unit checks of the pieces: names, negotiation, archive reading, the streaming form parser."""

from __future__ import annotations

import hashlib
import io
import struct
import tarfile
from datetime import datetime

import pytest
from werkzeug.sansio.multipart import Data, Field, File, MultipartEncoder, Preamble
from werkzeug.sansio.multipart import Epilogue as End

from app.pypi import distributions, simple
from app.pypi.errors import PyPIError
from app.pypi.form import read_upload
from app.registry.python import names
from tests.pypi import dists
from tests.pypi.conftest import PIP_ACCEPT, UV_ACCEPT

JSON, HTML, TEXT = simple.JSON_V1, simple.HTML_V1, simple.TEXT_HTML


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, TEXT),
        ("", TEXT),
        (PIP_ACCEPT, JSON),
        (UV_ACCEPT, JSON),
        ("text/html", TEXT),
        ("TEXT/HTML", TEXT),
        (f"{JSON};q=0.5, {HTML};q=0.6", HTML),
        (f"{JSON};q=0.5,{HTML};Q=0.4", JSON),
        (f"{JSON};q=oops, text/html;q=0.1", TEXT),
        (f"{JSON};q=0", TEXT),
        ("application/vnd.pypi.simple.latest+json", JSON),
        ("*/*;q=0.1, application/vnd.pypi.simple.latest+html", HTML),
        (f"application/*;q=0.9, {JSON};q=0.2", HTML),
        ("image/png", TEXT),
        # Equal qualities go to the server's order, however specific the client's ranges.
        (f"*/*, {JSON}", TEXT),
        (f"{JSON}, application/*", HTML),
        # An invalid q drops the range (RFC 9110); parameters must match exactly.
        (f"{JSON};q=1.5, text/html;q=0.1", TEXT),
        (f"{JSON};level=1", TEXT),
        (f"{JSON}, {JSON};q=0.5", JSON),
    ],
)
def test_negotiation(accept, expected):
    assert simple.negotiate(accept) == expected


@pytest.mark.parametrize(
    ("name", "valid", "normal"),
    [
        ("requests", True, "requests"),
        ("Zope.Event", True, "zope-event"),
        ("charset__normalizer", True, "charset-normalizer"),
        ("A", True, "a"),
        ("a-_.b", True, "a-b"),
        ("-leading", False, None),
        ("trailing.", False, None),
        ("spa ce", False, None),
        ("ünicode", False, None),
        ("x" * 129, False, None),
    ],
)
def test_project_names(name, valid, normal):
    assert names.is_valid(name) is valid
    if normal:
        assert names.normalize(name) == normal


def test_repository_namespace_is_valid_oci_and_reserved():
    from app.registry.names import is_reserved_path, parse_repository

    repo = parse_repository(names.repository("acme", "main", "zope-event"))
    assert repo.path == "cargohold.pypi/zope-event"
    assert is_reserved_path(repo.path)
    assert is_reserved_path("cargohold.npm/left-pad")
    assert not is_reserved_path("python")
    assert not is_reserved_path("team/cargohold.pypi")


@pytest.mark.parametrize(
    ("filename", "filetype", "project", "version"),
    [
        ("zope.event-5.0-py3-none-any.whl", "bdist_wheel", "zope-event", "5.0"),
        (
            "MarkupSafe-3.0.2-cp311-cp311-manylinux_2_17_x86_64.whl",
            "bdist_wheel",
            "markupsafe",
            "3.0.2",
        ),
        ("pkg-1.0-1-py3-none-any.whl", "bdist_wheel", "pkg", "1.0"),
        ("zope_event-5.0.tar.gz", "sdist", "zope-event", "5.0"),
        ("pytz-2024.2.tar.gz", "sdist", "pytz", "2024.2"),
    ],
)
def test_filenames(filename, filetype, project, version):
    dist = distributions.parse_filename(filename)
    assert (dist.filetype, dist.project, str(dist.version)) == (filetype, project, version)


@pytest.mark.parametrize(
    "filename",
    [
        "pkg-1.0.zip",
        "pkg-1.0.egg",
        "pkg-1.0.tar.bz2",
        "pkg.whl",
        "pkg-1.0-py3-none.whl",
        "pkg-not.a.version-py3-none-any.whl",
        "../pkg-1.0.tar.gz",
        "dir/pkg-1.0.tar.gz",
        ".pkg-1.0.tar.gz",
        "",
    ],
)
def test_bad_filenames(filename):
    with pytest.raises(PyPIError) as err:
        distributions.parse_filename(filename)
    assert err.value.status == 400


def _dist(filename: str):
    return distributions.parse_filename(filename)


def test_overlapping_zip_members_are_a_bomb(tmp_path):
    path = dists.make_wheel(tmp_path, "ovl", "1.0")
    data = bytearray(path.read_bytes())
    # Point the second central-directory entry at the first member's local header.
    first = data.find(b"PK\x01\x02")
    second = data.find(b"PK\x01\x02", first + 4)
    offset = struct.unpack_from("<I", data, first + 42)[0]
    struct.pack_into("<I", data, second + 42, offset)
    with pytest.raises(PyPIError, match="overlapping"):
        distributions.wheel_metadata(io.BytesIO(bytes(data)), len(data), _dist(path.name))


def test_wheel_metadata_is_read(tmp_path):
    path = dists.make_wheel(tmp_path, "good", "1.0", requires_python=">=3.9")
    data = path.read_bytes()
    meta = distributions.wheel_metadata(io.BytesIO(data), len(data), _dist(path.name))
    parsed = distributions.parse_metadata(meta, "METADATA")
    assert (parsed.name, str(parsed.version), parsed.requires_python) == ("good", "1.0", ">=3.9")


def test_wheel_path_traversal(tmp_path):
    path = dists.make_wheel(tmp_path, "trav", "1.0", extra={"../../etc/cron.d/x": b"*"})
    data = path.read_bytes()
    with pytest.raises(PyPIError, match="unsafe member path"):
        distributions.wheel_metadata(io.BytesIO(data), len(data), _dist(path.name))


def _tar(members: list[tarfile.TarInfo], top="pkg-1.0") -> bytes:
    raw = io.BytesIO()
    info = dists.metadata("pkg", "1.0").encode()
    with tarfile.open(fileobj=raw, mode="w:gz") as tf:
        pkg_info = tarfile.TarInfo(f"{top}/PKG-INFO")
        pkg_info.size = len(info)
        tf.addfile(pkg_info, io.BytesIO(info))
        for m in members:
            tf.addfile(m, io.BytesIO(b"x" * m.size) if m.isfile() else None)
    return raw.getvalue()


def _member(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", size: int = 0):
    m = tarfile.TarInfo(name)
    m.type, m.linkname, m.size = kind, link, size
    return m


@pytest.mark.parametrize(
    ("member", "phrase"),
    [
        (_member("/etc/passwd"), "unsafe member path"),
        (_member("pkg-1.0/../../x"), "unsafe member path"),
        (_member("pkg-1.0\\..\\..\\x"), "unsafe member path"),
        (_member("pkg-1.0/l", tarfile.SYMTYPE, "../../x"), "points outside"),
        (_member("pkg-1.0/l", tarfile.SYMTYPE, "/etc/passwd"), "points outside"),
        (_member("pkg-1.0/h", tarfile.LNKTYPE, "../x"), "points outside"),
        (_member("pkg-1.0/dev", tarfile.CHRTYPE), "special member"),
        (_member("other-1.0/x", size=1), "one top-level directory"),
    ],
)
def test_unsafe_tar_members(member, phrase):
    data = _tar([member])
    with pytest.raises(PyPIError, match=phrase):
        distributions.sdist_metadata(io.BytesIO(data), len(data), _dist("pkg-1.0.tar.gz"))


def test_safe_tar_links_are_fine():
    data = _tar([_member("pkg-1.0/docs/l", tarfile.SYMTYPE, "../README")])
    meta = distributions.sdist_metadata(io.BytesIO(data), len(data), _dist("pkg-1.0.tar.gz"))
    assert b"Name: pkg" in meta


def test_gzip_bomb_is_refused():
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=9) as tf:
        big = tarfile.TarInfo("pkg-1.0/zeros")
        big.size = 100 * 1024 * 1024
        tf.addfile(big, io.BytesIO(bytes(big.size)))
    data = raw.getvalue()
    with pytest.raises(PyPIError, match="compression bomb"):
        distributions.sdist_metadata(io.BytesIO(data), len(data), _dist("pkg-1.0.tar.gz"))


@pytest.mark.parametrize("version", distributions.METADATA_VERSIONS)
def test_metadata_versions_accepted(version):
    meta = dists.metadata("pkg", "1.0", metadata_version=version).encode()
    assert distributions.parse_metadata(meta, "METADATA").metadata_version == version


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("Metadata-Version: 3.0\nName: pkg\nVersion: 1.0\n", "Metadata-Version"),
        ("Metadata-Version: 2.1\nVersion: 1.0\n", "invalid value for Name"),
        ("Metadata-Version: 2.1\nName: pkg\nVersion: one\n", "invalid value for Version"),
        ("Metadata-Version: 2.1\nName: pkg\nName: other\nVersion: 1\n", "repeated Name"),
    ],
)
def test_bad_metadata(text, phrase):
    with pytest.raises(PyPIError, match=phrase):
        distributions.parse_metadata(text.encode(), "METADATA")


def _multipart(parts: list[tuple[str, str | None, bytes]], boundary=b"xyzzy") -> bytes:
    enc = MultipartEncoder(boundary)
    out = enc.send_event(Preamble(data=b""))
    for name, filename, data in parts:
        from werkzeug.datastructures import Headers

        event = (
            File(name=name, filename=filename, headers=Headers())
            if filename
            else Field(name=name, headers=Headers())
        )
        out += enc.send_event(event)
        out += enc.send_event(Data(data=data, more_data=False))
    out += enc.send_event(End(data=b""))
    return out


def _reader(body: bytes, step: int):
    stream = io.BytesIO(body)
    return lambda _n: stream.read(step)


@pytest.mark.parametrize("step", [1, 7, 64, 1 << 20])
def test_form_streams_the_file_and_keeps_fields(step):
    content = bytes(range(256)) * 40 + b"\r\n--xyzz" + b"tail"
    body = _multipart(
        [
            (":action", None, b"file_upload"),
            ("classifiers", None, b"A"),
            ("classifiers", None, b"B"),
            ("content", "pkg-1.0.tar.gz", content),
            ("summary", None, "café".encode()),
        ]
    )
    spool = io.BytesIO()
    form = read_upload(_reader(body, step), "multipart/form-data; boundary=xyzzy", spool, 1 << 20)
    assert spool.getvalue() == content
    assert form.filename == "pkg-1.0.tar.gz" and form.size == len(content)
    assert form.sha256 == hashlib.sha256(content).hexdigest()
    assert form.blake2_256 == hashlib.blake2b(content, digest_size=32).hexdigest()
    assert form.md5 == hashlib.md5(content).hexdigest()
    assert form.getlist("classifiers") == ["A", "B"]
    assert form.get("summary") == "café"


@pytest.mark.parametrize(
    ("body", "ctype", "status", "phrase"),
    [
        (b"{}", "application/json", 400, "multipart/form-data"),
        (b'--xyzzy\r\nContent-Disposition: form-data; name="a"\r\n\r\nb', None, 400, "multipart"),
        (
            _multipart([("content", "a.whl", b"1"), ("content", "b.whl", b"2")]),
            None,
            400,
            "more than one content file",
        ),
        (_multipart([("content", "a.whl", b"x" * 2048)]), None, 413, "File too large"),
        (_multipart([("name", None, b"\xff\xfe")]), None, 400, "not UTF-8"),
    ],
)
def test_form_refusals(body, ctype, status, phrase):
    with pytest.raises(PyPIError) as err:
        read_upload(
            _reader(body, 100), ctype or "multipart/form-data; boundary=xyzzy", io.BytesIO(), 1024
        )
    assert err.value.status == status
    assert phrase in err.value.message


def test_html_escapes_everything_it_echoes():
    view = simple.FileView(
        filename="p-1.0.tar.gz",
        url="../../files/p/p-1.0.tar.gz",
        sha256="0" * 64,
        requires_python='>=3.8,<4"',
        metadata_sha256=None,
        yanked=True,
        yanked_reason='<script>"x"</script>',
        size=1,
        uploaded_at=datetime(2026, 1, 2, 3, 4, 5, 6),
    )
    page = simple.project_html("p<b>", [view])
    assert 'data-yanked="&lt;script&gt;&#34;x&#34;&lt;/script&gt;"' in page
    assert 'data-requires-python="&gt;=3.8,&lt;4&#34;"' in page
    assert "<script>" not in page and "<b>" not in page
    assert "<b>" not in simple.index_html(["<b>"])
    assert simple.upload_time(view.uploaded_at) == "2026-01-02T03:04:05.000006Z"
