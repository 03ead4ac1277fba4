"""Reading what a stored manifest says, for the artifact and repository pages: bounded reads,
never trusting the content's shape (it is whatever a client pushed), the referrers tree level by
level, and what a page of manifests weighs."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy import and_, func, or_, select, union
from sqlalchemy.orm import aliased

from app.caching import BoundedCache
from app.console.kinds import HELM_CONFIG, kind_of
from app.models import Blob, Manifest, ManifestReference, Repository, db
from app.registry.manifests import INDEX_TYPES
from app.storage import BlobStore

MAX_CONFIG = 256 * 1024
TREE_DEPTH = 6
TREE_NODES = 500
_PLATFORMS: BoundedCache[str, tuple[str, ...]] = BoundedCache(4096)


def read_json(store: BlobStore, digest: str, limit: int) -> dict | None:
    """The JSON object stored under a digest, or None when it is missing, too big or not JSON:
    the page then shows what the database knows."""
    try:
        with store.open(digest) as f:
            body = f.read(limit + 1)
    except OSError:
        return None
    if len(body) > limit:
        return None
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def descriptors(doc: dict, key: str) -> list[dict]:
    out = []
    items = doc.get(key)
    for item in items if isinstance(items, list) else []:
        item = _dict(item)
        platform = _dict(item.get("platform"))
        annotations = {str(k): str(v) for k, v in _dict(item.get("annotations")).items()}
        out.append(
            {
                "media_type": _text(item.get("mediaType")),
                "digest": _text(item.get("digest")),
                "size": _int(item.get("size")),
                "artifact_type": _text(item.get("artifactType")),
                "title": annotations.get("org.opencontainers.image.title", ""),
                "platform": "/".join(
                    p
                    for p in (
                        _text(platform.get("os")),
                        _text(platform.get("architecture")),
                        _text(platform.get("variant")),
                    )
                    if p
                ),
                "annotations": annotations,
            }
        )
    return out


def helm_chart(store: BlobStore, config: dict | None) -> dict | None:
    """The Chart.yaml fields Helm copies into the config blob."""
    if not config or config.get("media_type") != HELM_CONFIG or not config.get("digest"):
        return None
    doc = read_json(store, config["digest"], MAX_CONFIG)
    if doc is None:
        return None
    keys = ("name", "version", "appVersion", "apiVersion", "description", "type", "home")
    return {k: str(doc[k]) for k in keys if isinstance(doc.get(k), str | int | float)}


def content_sizes(repository_id: int, manifests: list[Manifest]) -> dict[int, int]:
    """The bytes each manifest stands for: itself, what it names (config, layers) and, for an
    index, what its platform manifests name, each blob once; what is attached to it through
    `subject` is not counted. One query for the whole page."""
    ids = [m.id for m in manifests]
    if not ids:
        return {}
    ref, inner = aliased(ManifestReference), aliased(ManifestReference)
    parent, child = aliased(Manifest), aliased(Manifest)
    not_subject = or_(parent.subject_digest.is_(None), ref.digest != parent.subject_digest)
    direct = (
        select(ref.manifest_id.label("mid"), ref.digest.label("digest"))
        .join(parent, parent.id == ref.manifest_id)
        .where(ref.manifest_id.in_(ids), not_subject)
    )
    nested = (
        select(ref.manifest_id, inner.digest)
        .join(parent, parent.id == ref.manifest_id)
        .join(child, and_(child.repository_id == repository_id, child.digest == ref.digest))
        .join(inner, inner.manifest_id == child.id)
        .where(
            ref.manifest_id.in_(ids),
            parent.media_type.in_(INDEX_TYPES),
            not_subject,
            or_(child.subject_digest.is_(None), inner.digest != child.subject_digest),
        )
    )
    pairs = union(direct, nested).subquery()
    named = dict(
        db.session.execute(
            select(pairs.c.mid, func.sum(Blob.size))
            .join(Blob, Blob.digest == pairs.c.digest)
            .group_by(pairs.c.mid)
        ).all()
    )
    return {m.id: m.size + int(named.get(m.id) or 0) for m in manifests}


def platforms(store: BlobStore, manifest: Manifest, limit: int) -> tuple[str, ...]:
    """An index's platforms ("linux/arm64/v8"), read from the store once per digest (content
    never changes under its digest)."""
    if manifest.media_type not in INDEX_TYPES:
        return ()
    found = _PLATFORMS.get(manifest.digest)
    if found is None:
        doc = read_json(store, manifest.digest, limit) or {}
        found = tuple(d["platform"] for d in descriptors(doc, "manifests") if d["platform"])
        _PLATFORMS.put(manifest.digest, found)
    return found


@dataclass
class Node:
    manifest: Manifest
    kind: str
    children: list[Node] = field(default_factory=list)


def referrers_tree(repo: Repository, digest: str) -> list[Node]:
    """Everything attached to a manifest through `subject`, recursively: one query per level."""
    roots: list[Node] = []
    level: dict[str, list[Node]] = {digest: roots}
    seen = {digest}
    count = 0
    for _ in range(TREE_DEPTH):
        if not level or count >= TREE_NODES:
            break
        rows = db.session.execute(
            select(Manifest)
            .where(Manifest.repository_id == repo.id, Manifest.subject_digest.in_(list(level)))
            .order_by(Manifest.id)
            .limit(TREE_NODES - count)
        ).scalars()
        following: dict[str, list[Node]] = {}
        for m in rows:
            if m.digest in seen:
                continue
            seen.add(m.digest)
            node = Node(m, kind_of(m.media_type, m.artifact_type))
            level[m.subject_digest].append(node)
            following[m.digest] = node.children
            count += 1
        level = following
    return roots
