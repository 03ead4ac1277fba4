"""A published file enters the blob store through the registry's upload sessions, in process:
the same verification and cleanup as an OCI blob push."""

from __future__ import annotations

import base64
import hashlib

from sqlalchemy import func, select

from app.models import Blob, BlobLink, PythonFile, Upload, db
from app.storage import StorageUnavailable
from tests.conftest import INPROCESS_ADMIN_PASSWORD
from tests.pypi import dists

AUTH = {
    "Authorization": "Basic "
    + base64.b64encode(f"admin:{INPROCESS_ADMIN_PASSWORD}".encode()).decode()
}
URL = "/api/v1/acme/main/python/"


def post(client, path, project: str, **override):
    data = dists.form_for(path, project, "1.0", **override)
    with open(path, "rb") as f:
        data["content"] = (f, path.name)
        return client.post(URL, data=data, headers=AUTH, content_type="multipart/form-data")


def in_flight(app) -> tuple[int, list[str]]:
    """Open upload sessions: rows, and the filesystem store's session files. Other tests on the
    shared app leave sessions open on purpose, so tests compare before and after."""
    store = app.extensions["cargohold.store"]
    with app.app_context():
        rows = db.session.execute(select(func.count()).select_from(Upload)).scalar_one()
    folder = getattr(store, "uploads", None)
    return rows, sorted(p.name for p in folder.iterdir()) if folder else []


def test_file_goes_through_an_upload_session(inprocess_app, test_client, tmp_path, monkeypatch):
    from app.registry import uploads

    sessions = []
    real_start = uploads.start
    monkeypatch.setattr(
        uploads, "start", lambda *a: sessions.append(real_start(*a)) or sessions[-1]
    )
    name = dists.unique("ingest")
    wheel = dists.make_wheel(tmp_path, name, "1.0")
    before = in_flight(inprocess_app)
    resp = post(test_client, wheel, name)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert len(sessions) == 1
    digest = "sha256:" + hashlib.sha256(wheel.read_bytes()).hexdigest()
    store = inprocess_app.extensions["cargohold.store"]
    assert store.stat(digest) == wheel.stat().st_size
    with inprocess_app.app_context():
        assert db.session.get(Blob, digest).size == wheel.stat().st_size
        links = db.session.execute(select(BlobLink).where(BlobLink.digest == digest)).all()
        assert len(links) == 1
        row = db.session.execute(
            select(PythonFile).where(PythonFile.filename == wheel.name)
        ).scalar_one()
        assert row.uploaded_by == "admin"
    assert in_flight(inprocess_app) == before


def test_storage_failing_mid_file_leaves_no_session(
    inprocess_app, test_client, tmp_path, monkeypatch
):
    store = inprocess_app.extensions["cargohold.store"]
    real_append = store.upload_append

    def failing(upload_id, chunks, on_chunk):
        real_append(upload_id, [next(iter(chunks))], on_chunk)
        raise StorageUnavailable("disk went away")

    monkeypatch.setattr(store, "upload_append", failing)
    name = dists.unique("fails")
    wheel = dists.make_wheel(tmp_path, name, "1.0", extra={"big.bin": b"\0" * (3 << 20)})
    before = in_flight(inprocess_app)
    resp = post(test_client, wheel, name)
    assert resp.status_code == 503
    assert in_flight(inprocess_app) == before
    digest = "sha256:" + hashlib.sha256(wheel.read_bytes()).hexdigest()
    assert store.stat(digest) is None
    with inprocess_app.app_context():
        assert (
            db.session.execute(select(PythonFile).where(PythonFile.filename == wheel.name)).first()
            is None
        )


def test_same_content_in_two_registries_is_stored_once(
    inprocess_app, test_client, tmp_path, monkeypatch
):
    """The second registry links the stored content instead of writing a second copy."""
    from app.registry import uploads

    ingested = []
    real_ingest = uploads.ingest
    monkeypatch.setattr(uploads, "ingest", lambda *a: ingested.append(a[-1]) or real_ingest(*a))
    result = inprocess_app.test_cli_runner().invoke(args=["registry", "create", "acme", "twin"])
    assert result.exit_code == 0, result.output
    name = dists.unique("twice")
    wheel = dists.make_wheel(tmp_path, name, "1.0")
    digest = "sha256:" + hashlib.sha256(wheel.read_bytes()).hexdigest()
    before = in_flight(inprocess_app)
    for registry in ("main", "twin"):
        data = dists.form_for(wheel, name, "1.0")
        with open(wheel, "rb") as f:
            data["content"] = (f, wheel.name)
            resp = test_client.post(
                f"/api/v1/acme/{registry}/python/",
                data=data,
                headers=AUTH,
                content_type="multipart/form-data",
            )
        assert resp.status_code == 200, resp.get_data(as_text=True)
    assert ingested == [digest]
    with inprocess_app.app_context():
        links = db.session.execute(select(BlobLink).where(BlobLink.digest == digest)).all()
        assert len(links) == 2
    assert in_flight(inprocess_app) == before
