"""What only the S3 BlobStore does, against a real S3 server (SeaweedFS from scripts/services.sh),
not a mock: parts larger than a chunk, presigned URLs, server-side copies, a replica dying
mid-part. The behaviour every backend shares is in tests/test_blobstore_contract.py."""

from __future__ import annotations

import hashlib
import os

import pytest
import requests

from app.storage.s3 import MiB, S3Store
from tests.support.services import Services, require_services, unique_prefix


@pytest.fixture(scope="module")
def services() -> Services:
    return require_services()


@pytest.fixture
def make_store(services):
    prefixes: list[str] = []

    def make(prefix: str | None = None, **options) -> S3Store:
        prefix = prefix or unique_prefix()
        prefixes.append(prefix)
        options.setdefault("part_size", 5 * MiB)
        return S3Store(services.s3_client(), services.s3_bucket, prefix=prefix, **options)

    yield make
    for prefix in prefixes:
        services.purge(prefix)


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def in_flight(services: Services, store: S3Store) -> tuple[list[str], list[dict]]:
    prefix = store.prefix + "uploads/"
    return services.keys(prefix), services.multipart_uploads(prefix)


def read_upload(store: S3Store, upload_id: str) -> bytes:
    return b"".join(store.upload_read(upload_id))


def test_chunks_larger_than_a_part(services, make_store):
    store = make_store()
    data = os.urandom(23 * MiB + 7)
    store.upload_start("big")
    h = hashlib.sha256()
    assert store.upload_append("big", [data[: 12 * MiB]], h.update) == 12 * MiB
    assert store.upload_append("big", [data[12 * MiB :]], h.update) == len(data)
    assert f"sha256:{h.hexdigest()}" == digest(data)
    store.upload_commit("big", digest(data))
    with store.open(digest(data)) as f:
        assert hashlib.sha256(f.read()).hexdigest() == digest(data).split(":")[1]
    assert in_flight(services, store) == ([], [])


def test_presigned_url(make_store):
    store = make_store(presign_ttl=60)
    data = os.urandom(1000)
    store.put(digest(data), data)
    url = store.redirect_url(digest(data))
    assert url and "X-Amz-Expires=60" in url
    r = requests.get(url, timeout=30)
    assert r.status_code == 200 and r.content == data
    assert make_store(redirect=False).redirect_url(digest(data)) is None


def test_multipart_copy_above_the_copy_limit(services, make_store):
    """Blobs over 5 GiB need a multipart copy; a lowered limit exercises that path."""
    store = make_store(copy_limit=6 * MiB, copy_part_size=5 * MiB)
    data = os.urandom(12 * MiB + 3)
    store.upload_start("copy")
    store.upload_append("copy", [data], lambda _: None)
    store.upload_commit("copy", digest(data))
    with store.open(digest(data)) as f:
        assert f.read() == data
    assert services.multipart_uploads(store.prefix) == []


class Killed(BaseException):
    """Stands in for a worker dying: nothing after it runs."""


def test_replica_dying_mid_append_leaves_the_previous_state(services, make_store):
    store = make_store()
    first = os.urandom(2 * MiB)
    store.upload_start("dies")
    store.upload_append("dies", [first], lambda _: None)

    def body():
        yield os.urandom(6 * MiB)  # fills and uploads a part before the death
        raise Killed

    with pytest.raises(Killed):
        store.upload_append("dies", body(), lambda _: None)
    assert store.upload_size("dies") == len(first)
    # Another replica resumes from the recorded offset; the orphan part is overwritten.
    other = make_store(prefix=store.prefix.rstrip("/"))
    rest = os.urandom(9 * MiB)
    other.upload_append("dies", [rest], lambda _: None)
    assert read_upload(other, "dies") == first + rest
    other.upload_commit("dies", digest(first + rest))
    with other.open(digest(first + rest)) as f:
        assert f.read() == first + rest
    assert in_flight(services, store) == ([], [])
