"""Publishing a Python file: PyPI's upload rules, then the file into the registry core.

The form reader has already streamed the file to a local spool, hashing it as it arrived; the
spool is what the archive readers seek in. The file's bytes then enter the blob store through
the same upload session as an OCI blob push (`registry.uploads`), verified against the digest the
form reader computed. Blobs go in first, then the manifest, then the index row: a crash in
between leaves unreferenced content for garbage collection, never a row pointing at nothing.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from app import digests
from app.access import Principal, audit
from app.errors import Unavailable
from app.models import PythonFile, PythonProject, Repository, db
from app.models.base import utcnow
from app.models.upsert import insert_ignore
from app.pypi import artifact, attestations, distributions, provenance
from app.pypi.distributions import SDIST, WHEEL, CoreMetadata, DistFilename
from app.pypi.errors import bad_request
from app.pypi.form import UploadForm
from app.registry import blobs, manifest_store, quotas, repositories, uploads
from app.registry.errors import RegistryError
from app.registry.manifests import OCI_MANIFEST
from app.registry.python.files import Target, find_project
from app.registry.python.names import is_valid, normalize
from app.storage import BlobStore

MAX_FILE_SIZE = 1024 * 1024 * 1024
HELP_REUSE = "Filenames can never be reused, even after a deletion."
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Checked:
    """An upload that passed every rule: what gets stored."""

    dist: DistFilename
    meta: CoreMetadata
    meta_bytes: bytes
    # PEP 740: the verified attestations and how their publisher was established, if any.
    attested: tuple[attestations.Verified, str] | None = None


# ---- PyPI's rules ---------------------------------------------------------------------------


def _check_form(form: UploadForm) -> tuple[str, Version, str]:
    action = form.get(":action")
    if action != "file_upload":
        raise bad_request(f"Invalid value for :action: {action!r}; only file_upload is supported")
    if form.get("protocol_version") not in ("", "1"):
        raise bad_request("Unknown protocol_version; only 1 is supported")
    if form.filename is None or form.size == 0:
        raise bad_request("Upload payload does not have a file.")
    name = form.get("name")
    if not is_valid(name):
        raise bad_request(
            f"{name!r} is an invalid value for Name. Error: Start and end with a letter or "
            "numeral containing only ASCII numeric and '.', '_' and '-'."
        )
    try:
        version = Version(form.get("version"))
    except InvalidVersion:
        raise bad_request(
            f"{form.get('version')!r} is an invalid value for Version. Error: Must start and end "
            "with a letter or numeral and contain only ascii numeric and '.', '_' and '-'."
        ) from None
    _check_metadata_version(form.get("metadata_version"))
    filetype = form.get("filetype")
    if filetype not in distributions.FILETYPES:
        raise bad_request(
            f"{filetype!r} is an invalid value for filetype; use sdist or bdist_wheel"
        )
    _check_digests(form)
    return name, version, filetype


def _check_metadata_version(metadata_version: str) -> None:
    if metadata_version not in distributions.METADATA_VERSIONS:
        raise bad_request(
            f"{metadata_version!r} is an invalid value for Metadata-Version; "
            "1.0 to 2.5 are accepted"
        )


def _check_digests(form: UploadForm) -> None:
    given = {
        "md5_digest": form.md5,
        "sha256_digest": form.sha256,
        "blake2_256_digest": form.blake2_256,
    }
    supplied = {k: form.get(k).lower() for k in given if form.get(k)}
    if not supplied:
        raise bad_request("Include at least one message digest.")
    for key, value in supplied.items():
        if not hmac.compare_digest(value, given[key]):
            raise bad_request(
                f"The digest supplied does not match a digest calculated from the uploaded "
                f"file ({key})."
            )


def _check_filename(dist: DistFilename, name: str, version: Version, filetype: str) -> None:
    if dist.filetype != filetype:
        raise bad_request(f"Invalid file extension for filetype {filetype}: {dist.filename!r}")
    if dist.project != normalize(name):
        prefix = name.replace("-", "_")
        raise bad_request(f"Start filename for {name!r} with {prefix!r}.")
    if dist.version != version:
        raise bad_request(
            f"Version in filename should be {str(version)!r} not {str(dist.version)!r}."
        )


def _check_metadata(meta: CoreMetadata, dist: DistFilename, where: str) -> None:
    if canonicalize_name(meta.name) != dist.project:
        raise bad_request(
            f"Name in {where} ({meta.name!r}) does not match the filename {dist.filename!r}"
        )
    if meta.version != dist.version:
        raise bad_request(
            f"Version in {where} ({str(meta.version)!r}) does not match the filename "
            f"{dist.filename!r}"
        )


def _existing(target: Target, form: UploadForm) -> PythonFile | None:
    """Apply PyPI's reuse rules; return the identical live file when this is a re-upload."""
    assert form.filename is not None
    row = db.session.execute(
        select(PythonFile).where(
            PythonFile.registry_id == target.registry.id, PythonFile.filename == form.filename
        )
    ).scalar_one_or_none()
    if row is not None:
        if row.deleted_at is not None:
            raise bad_request(
                f"This filename has already been used, use a different version. {HELP_REUSE}"
            )
        if row.sha256 == form.sha256:
            return row
        raise bad_request(
            f"File already exists ({form.filename!r}, with blake2_256 hash "
            f"{row.blake2_256!r}). {HELP_REUSE}"
        )
    twin = db.session.execute(
        select(PythonFile.filename).where(
            PythonFile.registry_id == target.registry.id,
            PythonFile.sha256 == form.sha256,
            PythonFile.deleted_at.is_(None),
        )
    ).first()
    if twin is not None:
        raise bad_request(f"File already exists: the same content was uploaded as {twin[0]!r}.")
    return None


def _read_metadata(spool: BinaryIO, form: UploadForm, dist: DistFilename) -> bytes:
    if dist.filetype == WHEEL:
        return distributions.wheel_metadata(spool, form.size, dist)
    return distributions.sdist_metadata(spool, form.size, dist)


def _check_release(project: PythonProject | None, dist: DistFilename) -> None:
    if project is None or dist.filetype != SDIST:
        return
    sdists = db.session.execute(
        select(PythonFile.filename, PythonFile.version).where(
            PythonFile.project_id == project.id,
            PythonFile.filetype == SDIST,
            PythonFile.deleted_at.is_(None),
        )
    )
    # Compared as versions, so 1.0 and 1.0.0 are one release, as installers see them.
    for filename, version in sdists:
        if Version(version) == dist.version:
            raise bad_request(f"Only one sdist may be uploaded per release ({filename!r} exists).")


def _attest(form: UploadForm, dist: DistFilename, principal: Principal):
    """The upload's attestations verified against the file, or None when it sends none."""
    raw = form.get(attestations.FIELD)
    if not raw:
        return None
    workload = dict(principal.workload) if principal.workload else None
    return attestations.verify(raw, dist.filename, form.sha256, workload)


def _check(
    target: Target, form: UploadForm, spool: BinaryIO, principal: Principal
) -> Checked | PythonFile:
    """Every rule, cheapest first; the identical live file when this is a re-upload."""
    name, version, filetype = _check_form(form)
    assert form.filename is not None
    dist = distributions.parse_filename(form.filename)
    _check_filename(dist, name, version, filetype)
    # Before the reuse rule: a bad attestation is refused even with a re-upload.
    attested = _attest(form, dist, principal)
    if (same := _existing(target, form)) is not None:
        return same
    where = "METADATA" if dist.filetype == WHEEL else "PKG-INFO"
    meta_bytes = _read_metadata(spool, form, dist)
    meta = distributions.parse_metadata(meta_bytes, where)
    _check_metadata(meta, dist, where)
    _check_release(find_project(target, dist.project), dist)
    return Checked(dist, meta, meta_bytes, attested)


# ---- into the registry core -----------------------------------------------------------------


def _spooled(spool: BinaryIO) -> Iterator[bytes]:
    spool.seek(0)
    while chunk := spool.read(CHUNK):
        yield chunk


def _ingest_file(
    store: BlobStore, repo: Repository, principal: Principal, spool: BinaryIO, form: UploadForm
) -> str:
    digest = f"sha256:{form.sha256}"
    # The row before the object: content the collector is deleting is refused untouched.
    blobs.record(digest, form.size)
    if store.stat(digest) is not None:
        # Content the store already holds (the same file in another registry). The digest was
        # computed from these very bytes as they arrived, so linking is as safe as a mount.
        blobs.link(repo, digest)
    else:
        uploads.ingest(store, repo, principal, _spooled(spool), digest)
    return digest


def _put_metadata(store: BlobStore, repo: Repository, meta_bytes: bytes) -> str:
    # A few KiB, stored as a manifest is: the digest is computed here, from the bytes themselves.
    digest = digests.of_bytes(meta_bytes)
    blobs.record(digest, len(meta_bytes))
    store.put(digest, meta_bytes)
    blobs.link(repo, digest)
    return digest


def _store_artifact(
    store: BlobStore,
    target: Target,
    checked: Checked,
    form: UploadForm,
    spool: BinaryIO,
    principal: Principal,
) -> tuple[str, str, str | None]:
    """The file, its metadata, its manifest and its attestations; returns the metadata and
    manifest digests and the provenance object's sha256."""
    dist = checked.dist
    repo = repositories.ensure(target.repo_name(dist.project))
    digest = _ingest_file(store, repo, principal, spool, form)
    meta_digest = _put_metadata(store, repo, checked.meta_bytes)
    notes = artifact.annotations(checked.meta, dist)
    body = artifact.manifest(dist, form.size, digest, meta_digest, len(checked.meta_bytes), notes)
    if len(body) > artifact.MAX_MANIFEST:
        raise bad_request("Invalid metadata: the core-metadata fields are too large")
    reference = artifact.tag_for(dist.filename) or digests.of_bytes(body)
    manifest_digest, _ = manifest_store.put(store, repo, reference, body, OCI_MANIFEST)
    provenance_sha256 = None
    if checked.attested is not None:
        subject = (manifest_digest, len(body))
        verified = checked.attested[0]
        provenance_sha256 = provenance.store_referrer(
            store, repo, principal, subject, dist.filename, verified
        )
    return meta_digest, manifest_digest, provenance_sha256


def _index_row(
    target: Target,
    checked: Checked,
    form: UploadForm,
    digests_stored: tuple[str, str, str | None],
    principal: Principal,
) -> PythonFile:
    dist, meta = checked.dist, checked.meta
    meta_digest, manifest_digest, provenance_sha256 = digests_stored
    publisher = None
    if checked.attested is not None:
        verified, established_by = checked.attested
        publisher = {
            "publisher": verified.publisher,
            "established_by": established_by,
            "predicate_types": verified.predicate_types,
        }
    now = utcnow()
    insert_ignore(
        PythonProject,
        ["registry_id", "name"],
        registry_id=target.registry.id,
        name=dist.project,
        created_at=now,
        updated_at=now,
    )
    project = find_project(target, dist.project)
    assert project is not None
    project.updated_at = now
    return PythonFile(
        registry_id=target.registry.id,
        project_id=project.id,
        version=str(dist.version),
        filename=dist.filename,
        filetype=dist.filetype,
        python_version=form.get("pyversion") or None,
        size=form.size,
        sha256=form.sha256,
        blake2_256=form.blake2_256,
        md5=form.md5,
        requires_python=meta.requires_python,
        metadata_version=meta.metadata_version,
        metadata_sha256=meta_digest.split(":", 1)[1],
        metadata_size=len(checked.meta_bytes),
        manifest_digest=manifest_digest,
        uploaded_by=principal.name,
        uploaded_at=now,
        provenance_sha256=provenance_sha256,
        publisher=publisher,
        workload_identity=dict(principal.workload) if principal.workload else None,
    )


def _refused(store: BlobStore, checked: Checked, form: UploadForm) -> None:
    """A quota refused the upload: roll it back, and leave what already reached the store
    (the file, its metadata) to the collector. A commit point."""
    db.session.rollback()
    written = [
        (f"sha256:{form.sha256}", form.size),
        (digests.of_bytes(checked.meta_bytes), len(checked.meta_bytes)),
    ]
    blobs.abandon([(d, size) for d, size in written if store.stat(d) is not None])
    db.session.commit()


def upload(
    store: BlobStore, target: Target, form: UploadForm, spool: BinaryIO, principal: Principal
) -> tuple[PythonFile, bool]:
    """Validate and store one uploaded file. Returns the file row and whether it is new."""
    checked = _check(target, form, spool, principal)
    if isinstance(checked, PythonFile):
        return checked, False
    try:
        stored = _store_artifact(store, target, checked, form, spool, principal)
    except quotas.QuotaExceeded:
        _refused(store, checked, form)
        raise
    except RegistryError as exc:
        if exc.code != "BLOB_UNKNOWN":
            raise
        # The garbage collector is deleting this very content: nothing was written over it.
        raise Unavailable("this file's content is being removed right now: retry") from None
    row = _index_row(target, checked, form, stored, principal)
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        # A concurrent upload of the same filename won; judge ours against it.
        existing = _existing(target, form)
        if existing is None:
            raise
        return existing, False
    audit.record(
        "python.upload",
        org=target.org,
        registry=target.registry_name,
        repository=target.repo_name(checked.dist.project).full,
        reference=row.filename,
        details={
            "project": checked.dist.project,
            "version": row.version,
            "sha256": row.sha256,
            "size": row.size,
        },
    )
    return row, True
