"""Unit tests for the pure parts: digests, names, manifest validation."""

from __future__ import annotations

import io
import json

import pytest

from app import digests
from app.registry import manifests
from app.registry.errors import RegistryError
from app.registry.names import check_tag, parse_repository

SHA = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    "value",
    [SHA, "sha512:" + "b" * 128],
)
def test_valid_digests(value):
    assert digests.parse(value)[1] == value.split(":")[1]


@pytest.mark.parametrize(
    "value",
    ["", "sha256", "sha256:" + "a" * 63, "sha256:" + "A" * 64, "md5:" + "a" * 32, "sha512:abc"],
)
def test_invalid_digests(value):
    with pytest.raises(digests.InvalidDigest):
        digests.parse(value)


@pytest.mark.parametrize("name", ["acme/main/app", "a/b/c/d/e", "acme/main/a.b_c__d-e--f"])
def test_valid_names(name):
    assert parse_repository(name).full == name


@pytest.mark.parametrize(
    "name",
    [
        "acme/main",
        "Acme/main/app",
        "acme/main/../x",
        "acme//main/x",
        "acme/main/-x",
        "a/b/" + "c" * 252,
    ],
)
def test_invalid_names(name):
    with pytest.raises(RegistryError) as exc:
        parse_repository(name)
    assert exc.value.code == "NAME_INVALID"


def test_name_parts():
    name = parse_repository("acme/main/team/app")
    assert (name.org, name.registry, name.path) == ("acme", "main", "team/app")


@pytest.mark.parametrize("tag", ["latest", "v1.0.0", "_x", "A" * 128])
def test_valid_tags(tag):
    assert check_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", ".x", "-x", "a" * 129, "a/b", "a:b"])
def test_invalid_tags(tag):
    with pytest.raises(RegistryError):
        check_tag(tag)


def _desc(media_type="application/vnd.oci.image.layer.v1.tar", size=3, digest=SHA):
    return {"mediaType": media_type, "digest": digest, "size": size}


def _image(**extra):
    doc = {
        "schemaVersion": 2,
        "mediaType": manifests.OCI_MANIFEST,
        "config": _desc("application/vnd.oci.image.config.v1+json"),
        "layers": [_desc()],
    }
    doc.update(extra)
    return json.dumps(doc).encode()


def test_parse_image_manifest():
    body = _image(annotations={"a": "b"})
    parsed = manifests.parse(body, manifests.OCI_MANIFEST)
    assert parsed.media_type == manifests.OCI_MANIFEST
    assert parsed.digest == digests.of_bytes(body)
    assert len(parsed.blobs) == 2
    assert parsed.annotations == {"a": "b"}
    # With no artifactType, the referrers API reports the config media type.
    assert parsed.artifact_type == "application/vnd.oci.image.config.v1+json"


def test_parse_subject_and_artifact_type():
    parsed = manifests.parse(
        _image(subject=_desc(manifests.OCI_MANIFEST), artifactType="application/x.sbom"), None
    )
    assert parsed.subject.digest == SHA
    assert parsed.artifact_type == "application/x.sbom"


def test_media_type_inferred_without_header_or_field():
    doc = json.loads(_image())
    del doc["mediaType"]
    assert manifests.parse(json.dumps(doc).encode(), None).media_type == manifests.OCI_MANIFEST
    index = {"schemaVersion": 2, "manifests": [_desc(manifests.OCI_MANIFEST)]}
    assert manifests.parse(json.dumps(index).encode(), None).media_type == manifests.OCI_INDEX


@pytest.mark.parametrize(
    "body,content_type,needle",
    [
        (b"{not json", None, "not valid JSON"),
        (b"[]", None, "JSON object"),
        (_image(schemaVersion=1), None, "schema 1"),
        (_image(schemaVersion=3), None, "schemaVersion"),
        (_image(schemaVersion=True), None, "schemaVersion"),
        (_image(), manifests.DOCKER_SCHEMA1[1], "schema 1"),
        (_image(), manifests.OCI_INDEX, "does not match"),
        (_image(mediaType="application/x.unknown"), None, "unsupported"),
        (_image(config={"mediaType": "x", "digest": SHA, "size": 1}), None, "media type"),
        (_image(layers=[_desc(size=-1)]), None, "non-negative"),
        (_image(layers=[_desc(digest="sha256:zz")]), None, "digest"),
        (_image(layers="nope"), None, "layers"),
        (_image(annotations={"a": 1}), None, "annotations"),
        (
            json.dumps({"schemaVersion": 2, "mediaType": manifests.OCI_MANIFEST}).encode(),
            None,
            "config",
        ),
        (
            json.dumps({"schemaVersion": 2, "mediaType": manifests.OCI_INDEX}).encode(),
            None,
            "manifests list",
        ),
    ],
)
def test_invalid_manifests(body, content_type, needle):
    with pytest.raises(RegistryError) as exc:
        manifests.parse(body, content_type)
    assert exc.value.code == "MANIFEST_INVALID"
    assert needle in str(exc.value.detail)


def test_foreign_layers_are_recognised():
    foreign = manifests.descriptor(
        {**_desc("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"), "urls": ["x"]}, "l"
    )
    assert manifests.is_foreign(foreign)
    assert not manifests.is_foreign(manifests.descriptor(_desc(), "l"))


# ---- bounded parsing ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        (b"[" * 100_000, "nested deeper"),
        (b'{"a": ' * 65 + b"1" + b"}" * 65, "nested deeper"),
        (b'{"n": 1' + b"0" * 5000 + b"}", "digits"),
        (b'{"n": 1.' + b"0" * 5000 + b"}", "characters long"),
        (b"[NaN]", "NaN"),
        (b"\xff\xfe", "UTF-8"),
        (b"{", "not valid JSON"),
    ],
)
def test_bounded_json_refuses(data, phrase):
    from app import limits

    with pytest.raises(limits.InputRejected, match=phrase):
        limits.loads(data)


def test_bounded_json_ignores_brackets_inside_strings():
    from app import limits

    text = '{"a\\"[[[": ["' + "[" * 1000 + '\\\\", {"b": 9223372036854775807}]}'
    assert limits.loads(text) == {'a"[[[': ["[" * 1000 + "\\", {"b": 2**63 - 1}]}
    assert limits.loads(b"[" * 64 + b"]" * 64) is not None


@pytest.mark.parametrize("value", ["²", "٣", "-1", "+1", " 1", "1 ", "", "1" * 20, "0x10"])
def test_bounded_count_refuses(value):
    from app import limits

    with pytest.raises(limits.InputRejected):
        limits.parse_count(value, "n")


def test_bounded_read_stops_at_the_limit():
    import io

    from app import limits

    assert limits.read_bounded(io.BytesIO(b"x" * 10).read, 10) == b"x" * 10
    stream = io.BytesIO(b"x" * 1000)
    with pytest.raises(limits.TooLarge):
        limits.read_bounded(stream.read, 10)
    assert stream.tell() == 11
    with pytest.raises(limits.TooLarge):
        limits.read_bounded(io.BytesIO().read, 10, announced=11)


# ---- issuer fetch rules ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "url", "ok"),
    [
        ((), "https://token.actions.githubusercontent.com", True),
        ((), "http://token.actions.githubusercontent.com", False),
        ((), "https://127.0.0.1:8443", False),
        ((), "https://LOCALHOST", False),
        ((), "https://[fe80::1]", False),
        ((), "https://100.64.0.1", False),
        (("*.example.com",), "https://ci.example.com/tenant", True),
        (("*.example.com",), "http://ci.example.com", False),
        (("*.example.com",), "https://gitlab.com", False),
        (("https://gitlab.example.com",), "https://gitlab.example.com:443", True),
        (("https://gitlab.example.com",), "https://gitlab.example.com:8443", False),
        (("http://127.0.0.1:*",), "http://127.0.0.1:5555", True),
        (("http://127.0.0.1:*",), "https://127.0.0.1:5555", False),
        (("https://[::1]:8443",), "https://[::1]:8443/x", True),
        (("10.0.0.*",), "https://10.0.0.7", True),
    ],
)
def test_issuer_rules(allowed, url, ok):
    from app.access.issuer_fetch import FetchRefused, IssuerRules, check_url

    rules = IssuerRules(allowed)
    if ok:
        check_url(url, rules, resolve=False)
    else:
        with pytest.raises(FetchRefused):
            check_url(url, rules, resolve=False)


class _Collected:
    """A store whose blob went between the caller's check and the read."""

    def __init__(self, path=None):
        self.path = path

    def local_path(self, digest: str):
        return self.path

    def redirect_url(self, digest: str) -> None:
        return None

    def open(self, digest: str, start: int = 0):
        raise FileNotFoundError(digest)


@pytest.mark.parametrize("sendfile", [False, True])
def test_a_blob_collected_before_it_is_read_is_not_found(tmp_path, sendfile):
    from flask import Flask

    from app.errors import NotFound
    from app.web import send_blob

    store = _Collected(tmp_path / "gone" if sendfile else None)
    with Flask(__name__).test_request_context("/"), pytest.raises(NotFound):
        send_blob(store, "sha256:" + "0" * 64, 10, "no-store")  # type: ignore[arg-type]


class _Memory:
    """A store holding one blob in memory, streamed as a store without sendfile streams it."""

    def __init__(self, data: bytes):
        self.data = data

    def local_path(self, digest: str) -> None:
        return None

    def redirect_url(self, digest: str) -> None:
        return None

    def open(self, digest: str, start: int = 0) -> io.BytesIO:
        return io.BytesIO(self.data[start:])


_BLOB = bytes(range(256)) * 4
_BLOB_DIGEST = digests.of_bytes(_BLOB)
_OTHER_ETAG = '"sha256:' + "0" * 64 + '"'


@pytest.mark.parametrize(
    ("headers", "status", "body", "content_range"),
    [
        ({}, 200, _BLOB, None),
        ({"If-None-Match": f'"{_BLOB_DIGEST}"'}, 304, b"", None),
        # If-None-Match compares weakly (RFC 9110): a proxy may have weakened the tag.
        ({"If-None-Match": f'W/"{_BLOB_DIGEST}"'}, 304, b"", None),
        ({"If-None-Match": _OTHER_ETAG}, 200, _BLOB, None),
        ({"Range": "bytes=10-19"}, 206, _BLOB[10:20], "bytes 10-19/1024"),
        ({"Range": "bytes=1000-"}, 206, _BLOB[1000:], "bytes 1000-1023/1024"),
        ({"Range": "bytes=1000-5000"}, 206, _BLOB[1000:], "bytes 1000-1023/1024"),
        ({"Range": "bytes=-10"}, 206, _BLOB[-10:], "bytes 1014-1023/1024"),
        # A suffix longer than the blob is the whole blob.
        ({"Range": "bytes=-5000"}, 206, _BLOB, "bytes 0-1023/1024"),
        ({"Range": "bytes=1024-"}, 416, b"", "bytes */1024"),
        # Several ranges, another unit, an If-Range naming other content: the whole blob.
        ({"Range": "bytes=0-1,5-6"}, 200, _BLOB, None),
        ({"Range": "items=0-4"}, 200, _BLOB, None),
        ({"Range": "bytes=0-9", "If-Range": _OTHER_ETAG}, 200, _BLOB, None),
        (
            {"Range": "bytes=0-9", "If-Range": f'"{_BLOB_DIGEST}"'},
            206,
            _BLOB[:10],
            "bytes 0-9/1024",
        ),
    ],
)
def test_blob_ranges_and_conditionals(headers, status, body, content_range):
    from flask import Flask

    from app.web import send_blob

    with Flask(__name__).test_request_context("/", headers=headers):
        resp = send_blob(_Memory(_BLOB), _BLOB_DIGEST, len(_BLOB), "no-store")  # type: ignore[arg-type]
        assert resp.status_code == status
        assert resp.get_data() == body
        assert resp.headers.get("Content-Range") == content_range
        if status in (200, 206):
            assert resp.headers["Content-Length"] == str(len(body))


def test_an_empty_blob_is_sent_whole_whatever_range_is_asked():
    from flask import Flask

    from app.web import send_blob

    empty = digests.of_bytes(b"")
    with Flask(__name__).test_request_context("/", headers={"Range": "bytes=0-"}):
        resp = send_blob(_Memory(b""), empty, 0, "no-store")  # type: ignore[arg-type]
        assert resp.status_code == 200 and resp.get_data() == b""
