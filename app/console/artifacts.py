"""Reading what a stored manifest says, for the artifact page: bounded reads, never trusting the
content's shape (it is whatever a client pushed), and the referrers tree level by level."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy import select

from app.console.kinds import HELM_CONFIG, kind_of
from app.models import Manifest, Repository, db
from app.storage import BlobStore

MAX_CONFIG = 256 * 1024
TREE_DEPTH = 6
TREE_NODES = 500


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
