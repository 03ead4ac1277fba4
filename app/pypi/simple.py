"""The Simple Repository API pages: PEP 503 HTML and PEP 691 JSON, chosen by Accept.

Both formats carry the same facts: PEP 592 yanking, PEP 658/714 core-metadata files, PEP 700
sizes, upload times and versions (api-version 1.1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from html import escape
from urllib.parse import quote

from app.models import PythonFile

API_VERSION = "1.1"
JSON_V1 = "application/vnd.pypi.simple.v1+json"
HTML_V1 = "application/vnd.pypi.simple.v1+html"
TEXT_HTML = "text/html"
JSON_LATEST = "application/vnd.pypi.simple.latest+json"
HTML_LATEST = "application/vnd.pypi.simple.latest+html"
# Server preference breaks ties: HTML first, so `*/*` and old clients get what they always got.
OFFERS = (TEXT_HTML, HTML_V1, HTML_LATEST, JSON_V1, JSON_LATEST)
CONCRETE = {JSON_LATEST: JSON_V1, HTML_LATEST: HTML_V1}


def _ranges(accept: str) -> list[tuple[str, float]]:
    out = []
    for item in accept.split(","):
        media, *params = (p.strip() for p in item.split(";"))
        if not media:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = min(max(float(value.strip()), 0.0), 1.0)
                except ValueError:
                    q = 0.0
        out.append((media.lower(), q))
    return out


def _quality(offer: str, ranges: list[tuple[str, float]]) -> float:
    """RFC 9110: the most specific range that matches an offer gives its quality."""
    kind = offer.split("/", 1)[0]
    best, specificity = 0.0, -1
    for media, q in ranges:
        if media == offer:
            rank = 2
        elif media == f"{kind}/*":
            rank = 1
        elif media == "*/*":
            rank = 0
        else:
            continue
        if rank > specificity:
            best, specificity = q, rank
    return best


def negotiate(accept: str | None) -> str:
    """The content type to answer with. Nothing acceptable falls back to HTML, as PyPI does."""
    ranges = _ranges(accept or "")
    if not ranges:
        return TEXT_HTML
    scored = [(_quality(o, ranges), -i, o) for i, o in enumerate(OFFERS)]
    q, _, offer = max(scored)
    if q <= 0:
        return TEXT_HTML
    return CONCRETE.get(offer, offer)


def is_json(content_type: str) -> bool:
    return content_type == JSON_V1


def response_type(content_type: str) -> str:
    return "text/html; charset=utf-8" if content_type == TEXT_HTML else content_type


def upload_time(when: datetime) -> str:
    # PEP 700: yyyy-mm-ddThh:mm:ss.ffffffZ, in UTC.
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class FileView:
    """One file as the pages show it; `url` is relative to the project page."""

    filename: str
    url: str
    sha256: str
    requires_python: str | None
    metadata_sha256: str | None
    yanked: bool
    yanked_reason: str | None
    size: int
    uploaded_at: datetime


def file_view(f: PythonFile, project: str) -> FileView:
    return FileView(
        filename=f.filename,
        url=f"../../files/{project}/{quote(f.filename)}",
        sha256=f.sha256,
        requires_python=f.requires_python,
        # PEP 658 metadata is offered for wheels only: an sdist's PKG-INFO may leave
        # dependencies dynamic, and installers would trust it as final.
        metadata_sha256=f.metadata_sha256 if f.filetype == "bdist_wheel" else None,
        yanked=f.yanked,
        yanked_reason=f.yanked_reason,
        size=f.size,
        uploaded_at=f.uploaded_at,
    )


_HEAD = (
    "<!DOCTYPE html>\n<html>\n  <head>\n"
    f'    <meta name="pypi:repository-version" content="{API_VERSION}">\n'
    "    <title>{title}</title>\n  </head>\n  <body>\n"
)
_TAIL = "  </body>\n</html>\n"


def index_html(projects: list[str]) -> str:
    links = "".join(f'    <a href="{escape(quote(p))}/">{escape(p)}</a><br>\n' for p in projects)
    return _HEAD.format(title="Simple index") + links + _TAIL


def index_json(projects: list[str]) -> str:
    return json.dumps(
        {"meta": {"api-version": API_VERSION}, "projects": [{"name": p} for p in projects]}
    )


def project_html(project: str, files: list[FileView]) -> str:
    title = escape(f"Links for {project}")
    rows = []
    for f in files:
        attrs = [f'href="{escape(f.url)}#sha256={f.sha256}"']
        if f.requires_python:
            attrs.append(f'data-requires-python="{escape(f.requires_python)}"')
        if f.metadata_sha256:
            # PEP 714 name, plus the PEP 658 one for older pip; both carry the same value.
            value = f"sha256={f.metadata_sha256}"
            attrs.append(f'data-dist-info-metadata="{value}"')
            attrs.append(f'data-core-metadata="{value}"')
        if f.yanked:
            attrs.append(f'data-yanked="{escape(f.yanked_reason or "")}"')
        rows.append(f"    <a {' '.join(attrs)}>{escape(f.filename)}</a><br>\n")
    return _HEAD.format(title=title) + f"    <h1>{title}</h1>\n" + "".join(rows) + _TAIL


def project_json(project: str, versions: list[str], files: list[FileView]) -> str:
    out = []
    for f in files:
        entry: dict = {
            "filename": f.filename,
            "url": f.url,
            "hashes": {"sha256": f.sha256},
            "requires-python": f.requires_python,
            # PEP 714: only the new key; pip 22.3 to 23.1 crash on "dist-info-metadata".
            "core-metadata": {"sha256": f.metadata_sha256} if f.metadata_sha256 else False,
            "yanked": (f.yanked_reason or True) if f.yanked else False,
            "size": f.size,
            "upload-time": upload_time(f.uploaded_at),
        }
        if entry["requires-python"] is None:
            del entry["requires-python"]
        out.append(entry)
    return json.dumps(
        {
            "meta": {"api-version": API_VERSION},
            "name": project,
            "versions": versions,
            "files": out,
        }
    )
