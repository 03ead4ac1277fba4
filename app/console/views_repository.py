"""A repository (tags, untagged manifests) and one artifact (manifest): what it holds, what is
attached to it, and deletion for those who may delete."""

from __future__ import annotations

from flask import current_app, redirect, render_template, request, url_for
from sqlalchemy import exists, select

from app import digests
from app.console import artifacts, vulnerabilities
from app.console.blueprint import bp, form_of
from app.console.kinds import LABELS, kind_of
from app.console.pagination import pager
from app.console.templating import notice
from app.errors import Invalid, NotFound
from app.gate import permits, requires
from app.models import Manifest, Repository, Tag, db
from app.registry import blobs, deletion, manifest_store
from app.registry.errors import RegistryError
from app.registry.names import is_reserved_path
from app.registry.signing import keys as signing_keys
from app.registry.signing import verify as signing
from app.web import send_blob

REPO = "/orgs/<org>/<registry>/r/<path:repo>"


def _repository(org: str, registry: str, repo: str) -> Repository:
    found = db.session.execute(
        select(Repository).where(Repository.name == f"{org}/{registry}/{repo}")
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"no repository {repo!r} in {org}/{registry}")
    return found


def _may_delete(org: str, registry: str, repo: str) -> bool:
    # Python files are deleted from the project page, which keeps the index rows in step.
    return not is_reserved_path(repo) and permits("delete", "registry", org=org, registry=registry)


def _store():
    return current_app.extensions["cargohold.store"]


@bp.route(REPO)
@requires("pull", "registry")
def repository(org: str, registry: str, repo: str):
    found = _repository(org, registry, repo)
    pg, upg = pager("page"), pager("upage")
    tag_rows, more_tags = pg.window(
        db.session.execute(
            select(Tag.name, Tag.updated_at, Tag.pushed_by, Manifest)
            .join(Manifest, Manifest.id == Tag.manifest_id)
            .where(Tag.repository_id == found.id)
            .order_by(Tag.name)
            .offset(pg.offset)
            .limit(pg.per_page + 1)
        ).all()
    )
    untagged, more_untagged = upg.window(
        list(
            db.session.execute(
                select(Manifest)
                .where(
                    Manifest.repository_id == found.id,
                    ~exists().where(Tag.manifest_id == Manifest.id),
                )
                .order_by(Manifest.created_at.desc(), Manifest.id.desc())
                .offset(upg.offset)
                .limit(upg.per_page + 1)
            ).scalars()
        )
    )
    listed = [man for _, _, _, man in tag_rows] + untagged
    limit = current_app.extensions["cargohold.settings"].max_manifest_bytes
    return render_template(
        "console/repository.html",
        org=org,
        registry=registry,
        repo=repo,
        sizes=artifacts.content_sizes(found.id, listed),
        platforms={m.id: artifacts.platforms(_store(), m, limit) for m in listed},
        tags=tag_rows,
        more_tags=more_tags,
        untagged=untagged,
        more_untagged=more_untagged,
        pg=pg,
        upg=upg,
        kind_of=kind_of,
        labels=LABELS,
        may_delete=_may_delete(org, registry, repo),
    )


@bp.route(REPO + "/-/manifests/<reference>")
@requires("pull", "registry")
def artifact(org: str, registry: str, repo: str, reference: str):
    found = _repository(org, registry, repo)
    manifest = manifest_store.find(found, reference)
    if not digests.is_digest(reference):
        return redirect(
            url_for(
                "console.artifact", org=org, registry=registry, repo=repo, reference=manifest.digest
            )
        )
    limit = current_app.extensions["cargohold.settings"].max_manifest_bytes
    doc = artifacts.read_json(_store(), manifest.digest, limit) or {}
    config = artifacts.descriptors({"c": [doc.get("config")]}, "c")[0] if "config" in doc else None
    layers = artifacts.descriptors(doc, "layers")
    children = artifacts.descriptors(doc, "manifests")
    tags = list(
        db.session.execute(
            select(Tag.name).where(Tag.manifest_id == manifest.id).order_by(Tag.name)
        ).scalars()
    )
    annotations = {str(k): str(v) for k, v in (manifest.annotations or {}).items()}
    subject = None
    if manifest.subject_digest:
        subject = (
            db.session.execute(
                select(Manifest.digest).where(
                    Manifest.repository_id == found.id, Manifest.digest == manifest.subject_digest
                )
            ).scalar_one_or_none()
            or manifest.subject_digest
        )
    total = (config["size"] or 0 if config else 0) + sum(x["size"] or 0 for x in layers)
    return render_template(
        "console/artifact.html",
        org=org,
        registry=registry,
        repo=repo,
        manifest=manifest,
        kind=kind_of(manifest.media_type, manifest.artifact_type),
        labels=LABELS,
        tags=tags,
        annotations=annotations,
        config=config,
        layers=layers,
        children=children,
        subject=subject,
        total=total + manifest.size,
        chart=artifacts.helm_chart(_store(), config),
        tree=artifacts.referrers_tree(found, manifest.digest),
        may_delete=_may_delete(org, registry, repo),
        signature=signing.status_of(_store(), found, manifest),
        signature_policy=signing_keys.find_policy(found.registry_id),
        vulns=vulnerabilities.for_manifest(found, manifest),
    )


@bp.route(REPO + "/-/blobs/<digest>")
@requires("pull", "registry")
def download_blob(org: str, registry: str, repo: str, digest: str):
    """A layer or config, for a browser: only through this repository's link to it."""
    found = _repository(org, registry, repo)
    size = blobs.linked_size(found, digest) if digests.is_digest(digest) else None
    if size is None:
        raise NotFound("no such blob in this repository")
    name = request.args.get("filename", "")
    safe = "".join(c for c in name if c.isalnum() or c in "._-+")[:200] or None
    # Sent from here, never redirected to the store: a presigned URL would lose the file's name
    # and the page's origin, and a browser would show the bytes instead of saving them.
    return send_blob(_store(), digest, size, "private, max-age=0", filename=safe, redirect=False)


def _confirm_or(kind: str, what: str, org: str, registry: str, repo: str):
    """Without JavaScript a delete button first leads to a page asking to confirm."""
    if request.form.get("confirm") == "yes":
        return None
    return render_template(
        "console/confirm.html",
        kind=kind,
        what=what,
        org=org,
        registry=registry,
        repo=repo,
        action=request.path,
    )


@bp.route(REPO + "/-/tags/<tag>/delete", methods=["POST"])
@requires("delete", "registry")
@form_of("console.repository")
def delete_tag(org: str, registry: str, repo: str, tag: str):
    return _delete(org, registry, repo, tag, "tag")


@bp.route(REPO + "/-/manifests/<reference>/delete", methods=["POST"])
@requires("delete", "registry")
@form_of("console.repository")
def delete_manifest(org: str, registry: str, repo: str, reference: str):
    return _delete(org, registry, repo, reference, "manifest")


def _delete(org: str, registry: str, repo: str, reference: str, kind: str):
    if is_reserved_path(repo):
        raise Invalid("Python files are deleted from their project's page.")
    found = db.session.execute(
        select(Repository).where(Repository.name == f"{org}/{registry}/{repo}")
    ).scalar_one_or_none()
    if found is None:
        notice("That repository does not exist.", "error")
        return redirect(url_for("console.registry", org=org, registry=registry))
    if (kind == "tag") == digests.is_digest(reference):
        raise Invalid(f"{reference!r} is not a {kind}.")
    confirm = _confirm_or(kind, reference, org, registry, repo)
    if confirm is not None:
        return confirm
    try:
        if kind == "manifest":
            # As /v2 does: its referrers, and an index's children nothing else uses, go with it;
            # an immutable tag on any of them refuses the whole deletion.
            removed = deletion.delete_manifest(found, reference)
        else:
            manifest_store.delete_reference(found, reference)
            removed = []
    except RegistryError as exc:
        if exc.status != 404:
            raise
        raise NotFound(f"No {kind} {reference!r} in {repo}.") from None
    also = len(removed) - 1
    extra = f" and {also} manifest{'s' if also != 1 else ''} attached to it" if also > 0 else ""
    notice(f"Deleted {kind} {reference}{extra}.")
    return redirect(url_for("console.repository", org=org, registry=registry, repo=repo))
