"""Python files as OCI artifacts, and the index rows that make the Simple API fast.

Each file is one OCI image manifest in `<org>/<registry>/cargohold.pypi/<project>`:

- artifactType `application/vnd.python.artifact`;
- config: the file's core metadata (wheel METADATA / sdist PKG-INFO), which PEP 658 serves;
- one layer: the file itself, titled with its filename so `oras pull` writes it back out;
- annotations: the core-metadata fields (all but the long description).

Blobs go into the store first, then the manifest, then the index row. A crash in between leaves
unreferenced content for garbage collection, never a row pointing at nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app import digests
from app.errors import Unavailable
from app.models import Manifest, PythonFile, PythonProject, Registry, db
from app.models.base import utcnow
from app.models.upsert import insert_ignore
from app.pypi import distributions
from app.pypi.distributions import SDIST, WHEEL, CoreMetadata, DistFilename
from app.pypi.errors import PyPIError, bad_request, not_found
from app.pypi.form import UploadForm
from app.pypi.names import NAMESPACE, is_valid, normalize, repository
from app.registry import blobs, manifest_store, repositories
from app.registry.errors import RegistryError
from app.registry.manifests import OCI_MANIFEST
from app.registry.names import TAG, RepoName, parse_repository
from app.storage import BlobStore

ARTIFACT_TYPE = "application/vnd.python.artifact"
METADATA_MEDIA_TYPE = "application/vnd.python.core-metadata"
FILE_MEDIA_TYPES = {WHEEL: "application/vnd.python.wheel", SDIST: "application/vnd.python.sdist"}
TITLE = "org.opencontainers.image.title"
CORE_METADATA_PREFIX = "org.python.core-metadata."
MAX_FILE_SIZE = 1024 * 1024 * 1024
HELP_REUSE = "Filenames can never be reused, even after a deletion."

# packaging's RawMetadata keys whose email header is not simply the key with dashes.
_HEADER_NAMES = {
    "classifiers": "classifier",
    "platforms": "platform",
    "supported_platforms": "supported-platform",
    "project_urls": "project-url",
    "license_files": "license-file",
    "import_names": "import-name",
    "import_namespaces": "import-namespace",
}


@dataclass(frozen=True)
class Target:
    """Where an operation applies: one registry of one organisation."""

    org: str
    registry_name: str
    registry: Registry

    def repo_name(self, project: str) -> RepoName:
        full = repository(self.org, self.registry_name, project)
        try:
            return parse_repository(full)
        except RegistryError:
            raise bad_request(
                f"Project name {project!r} is too long for this registry's repository names"
            ) from None


# ---- upload ---------------------------------------------------------------------------------


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
    metadata_version = form.get("metadata_version")
    if metadata_version not in distributions.METADATA_VERSIONS:
        raise bad_request(
            f"{metadata_version!r} is an invalid value for Metadata-Version; "
            "1.0 to 2.5 are accepted"
        )
    filetype = form.get("filetype")
    if filetype not in distributions.FILETYPES:
        raise bad_request(
            f"{filetype!r} is an invalid value for filetype; use sdist or bdist_wheel"
        )
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
    return name, version, filetype


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


def _project(target: Target, name: str) -> PythonProject | None:
    return db.session.execute(
        select(PythonProject).where(
            PythonProject.registry_id == target.registry.id, PythonProject.name == name
        )
    ).scalar_one_or_none()


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


def _annotations(meta: CoreMetadata, dist: DistFilename) -> dict[str, str]:
    notes = {
        TITLE: dist.filename,
        "org.opencontainers.image.version": str(dist.version),
        "org.python.project": dist.project,
        "org.python.filetype": dist.filetype,
    }
    if meta.raw.get("summary"):
        notes["org.opencontainers.image.description"] = str(meta.raw["summary"])
    if meta.raw.get("license_expression"):
        notes["org.opencontainers.image.licenses"] = str(meta.raw["license_expression"])
    for key, value in meta.raw.items():
        if key == "description":  # the README; it stays in the config blob
            continue
        header = _HEADER_NAMES.get(key, key.replace("_", "-"))
        if isinstance(value, dict):
            text = "\n".join(f"{k}, {v}" for k, v in value.items())
        elif isinstance(value, list):
            text = "\n".join(str(v) for v in value)
        else:
            text = str(value)
        notes[CORE_METADATA_PREFIX + header] = text
    return notes


def _tag_for(filename: str) -> str | None:
    """A readable tag for `oras pull repo:<tag>`, when the filename fits the tag grammar."""
    tag = filename.replace("+", "_").replace("!", "_")
    return tag if TAG.match(tag) else None


def _put_file_blob(store: BlobStore, spool: BinaryIO, digest: str) -> None:
    if store.stat(digest) is not None:
        return
    upload_id = uuid.uuid4().hex
    store.upload_start(upload_id)
    try:
        spool.seek(0)
        h = hashlib.sha256()
        store.upload_append(upload_id, iter(lambda: spool.read(1024 * 1024), b""), h.update)
        # The spool was hashed as it arrived; hash the copy too before it takes the digest name.
        if f"sha256:{h.hexdigest()}" != digest:
            raise PyPIError(500, "Stored copy of the upload does not match its digest")
        store.upload_commit(upload_id, digest)
    except BaseException:
        store.upload_abort(upload_id)
        raise


def _claim(digest: str, size: int) -> None:
    try:
        blobs.record(digest, size)
    except RegistryError:
        raise Unavailable("this file's content is being removed right now: retry") from None


def _manifest(
    dist: DistFilename,
    size: int,
    digest: str,
    meta_digest: str,
    meta_size: int,
    annotations: dict[str, str],
) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": METADATA_MEDIA_TYPE, "digest": meta_digest, "size": meta_size},
        "layers": [
            {
                "mediaType": FILE_MEDIA_TYPES[dist.filetype],
                "digest": digest,
                "size": size,
                "annotations": {TITLE: dist.filename},
            }
        ],
        "annotations": annotations,
    }
    # No timestamps: the same file always yields the same manifest, so racing identical
    # uploads converge on one digest.
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def upload(
    store: BlobStore, target: Target, form: UploadForm, spool: BinaryIO, uploader: str
) -> tuple[PythonFile, bool]:
    """Validate and store one uploaded file. Returns the file row and whether it is new."""
    name, version, filetype = _check_form(form)
    assert form.filename is not None
    dist = distributions.parse_filename(form.filename)
    _check_filename(dist, name, version, filetype)
    if (same := _existing(target, form)) is not None:
        return same, False
    where = "METADATA" if dist.filetype == WHEEL else "PKG-INFO"
    meta_bytes = _read_metadata(spool, form, dist)
    meta = distributions.parse_metadata(meta_bytes, where)
    _check_metadata(meta, dist, where)
    project = _project(target, dist.project)
    _check_release(project, dist)

    repo_name = target.repo_name(dist.project)
    repo = repositories.ensure(repo_name)
    digest = f"sha256:{form.sha256}"
    meta_digest = digests.of_bytes(meta_bytes)
    contents = ((digest, form.size), (meta_digest, len(meta_bytes)))
    for d, size in contents:
        # Rows before objects: content the collector is deleting is refused untouched.
        _claim(d, size)
    _put_file_blob(store, spool, digest)
    store.put(meta_digest, meta_bytes)
    for d, _size in contents:
        blobs.link(repo, d)
    body = _manifest(
        dist, form.size, digest, meta_digest, len(meta_bytes), _annotations(meta, dist)
    )
    limit = 4 * 1024 * 1024
    if len(body) > limit:
        raise bad_request("Invalid metadata: the core-metadata fields are too large")
    manifest, _ = manifest_store.put(
        store, repo, _tag_for(dist.filename) or digests.of_bytes(body), body, OCI_MANIFEST
    )

    now = utcnow()
    insert_ignore(
        PythonProject,
        ["registry_id", "name"],
        registry_id=target.registry.id,
        name=dist.project,
        created_at=now,
        updated_at=now,
    )
    project = _project(target, dist.project)
    assert project is not None
    project.updated_at = now
    row = PythonFile(
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
        metadata_size=len(meta_bytes),
        manifest_digest=manifest.digest,
        uploaded_by=uploader,
        uploaded_at=now,
    )
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except IntegrityError:
        # A concurrent upload of the same filename won; judge ours against it.
        existing = _existing(target, form)
        if existing is None:
            raise
        return existing, False
    return row, True


# ---- reading --------------------------------------------------------------------------------


def _live_projects(target: Target):
    return select(PythonFile.project_id).where(
        PythonFile.registry_id == target.registry.id, PythonFile.deleted_at.is_(None)
    )


def project_names(target: Target) -> list[str]:
    """Names of projects with at least one file still available. Names only: building an ORM
    object per project dominated the root index's time with thousands of projects."""
    return list(
        db.session.execute(
            select(PythonProject.name)
            .where(
                PythonProject.registry_id == target.registry.id,
                PythonProject.id.in_(_live_projects(target)),
            )
            .order_by(PythonProject.name)
        ).scalars()
    )


def index_version(target: Target) -> tuple[int, int]:
    """Changes whenever the set of listed projects may have changed. File rows are never
    removed (deleted files stay as tombstones, so names are never reused) and a deletion is
    never undone: every upload raises the highest file id, every deletion the count of
    tombstones. Independent of clocks, so replicas agree; two aggregates over one index."""
    newest, deleted = db.session.execute(
        select(func.coalesce(func.max(PythonFile.id), 0), func.count(PythonFile.deleted_at)).where(
            PythonFile.registry_id == target.registry.id
        )
    ).one()
    return int(newest), int(deleted)


def last_change(target: Target) -> datetime | None:
    return db.session.execute(
        select(func.max(PythonProject.updated_at)).where(
            PythonProject.registry_id == target.registry.id
        )
    ).scalar_one_or_none()


def project(target: Target, name: str) -> PythonProject:
    found = _project(target, name)
    if found is None:
        raise not_found()
    return found


def live_files(proj: PythonProject) -> list[PythonFile]:
    rows = db.session.execute(
        select(PythonFile).where(PythonFile.project_id == proj.id, PythonFile.deleted_at.is_(None))
    ).scalars()
    return sorted(rows, key=lambda f: (Version(f.version), f.filename))


def versions(files: list[PythonFile]) -> list[str]:
    """Release versions in order, one spelling per release."""
    seen: dict[Version, str] = {}
    for f in files:
        seen.setdefault(Version(f.version), f.version)
    return [seen[v] for v in sorted(seen)]


def find_file(target: Target, project_name: str, filename: str) -> PythonFile:
    row = db.session.execute(
        select(PythonFile)
        .join(PythonProject)
        .where(
            PythonFile.registry_id == target.registry.id,
            PythonFile.filename == filename,
            PythonProject.name == project_name,
            PythonFile.deleted_at.is_(None),
        )
    ).scalar_one_or_none()
    if row is None:
        raise not_found()
    return row


# ---- yank and delete ------------------------------------------------------------------------


def _select(
    target: Target, project_name: str, filename: str | None, version: str | None
) -> tuple[PythonProject, list[PythonFile]]:
    proj = project(target, normalize(project_name))
    files = live_files(proj)
    if filename is not None:
        files = [f for f in files if f.filename == filename]
    if version is not None:
        try:
            wanted = Version(version)
        except InvalidVersion:
            raise not_found(f"No release {version!r} of {proj.name}") from None
        files = [f for f in files if Version(f.version) == wanted]
    if not files:
        raise not_found(f"No such file or release of {proj.name}")
    return proj, files


def set_yanked(
    target: Target,
    project_name: str,
    *,
    filename: str | None = None,
    version: str | None = None,
    yanked: bool = True,
    reason: str | None = None,
) -> list[PythonFile]:
    """PEP 592: a yanked file stays downloadable, installers skip it unless pinned exactly."""
    proj, files = _select(target, project_name, filename, version)
    for f in files:
        f.yanked = yanked
        f.yanked_reason = (reason or None) if yanked else None
    proj.updated_at = utcnow()
    db.session.flush()
    return files


def _drop_artifact(repo, proj: PythonProject, f: PythonFile) -> None:
    exists = db.session.execute(
        select(Manifest.id).where(
            Manifest.repository_id == repo.id, Manifest.digest == f.manifest_digest
        )
    ).first()
    if exists is not None:
        manifest_store.delete_reference(repo, f.manifest_digest)
    # Content another live file of the project still uses (a shared METADATA) stays linked.
    for hexdigest, column in (
        (f.sha256, PythonFile.sha256),
        (f.metadata_sha256, PythonFile.metadata_sha256),
    ):
        still_used = db.session.execute(
            select(PythonFile.id).where(
                PythonFile.project_id == proj.id,
                PythonFile.deleted_at.is_(None),
                column == hexdigest,
            )
        ).first()
        if still_used is None:
            blobs.unlink(repo, f"sha256:{hexdigest}")


def delete(
    target: Target,
    project_name: str,
    *,
    filename: str | None = None,
    version: str | None = None,
) -> list[PythonFile]:
    """Remove files' manifests and links; their rows stay as tombstones so names never return."""
    proj, files = _select(target, project_name, filename, version)
    now = utcnow()
    for f in files:
        f.deleted_at = now
    proj.updated_at = now
    # Tombstones and the removal of manifests and links are one transaction.
    db.session.flush()
    repo = repositories.find(target.repo_name(proj.name))
    if repo is not None:
        for f in files:
            _drop_artifact(repo, proj, f)
    return files


__all__ = ["ARTIFACT_TYPE", "MAX_FILE_SIZE", "NAMESPACE", "Target", "delete", "upload"]
