"""The Simple Repository API pages: PEP 503 HTML and PEP 691 JSON, chosen by Accept.

Both formats carry the same facts: PEP 592 yanking, PEP 658/714 core-metadata files, PEP 700
sizes, upload times and versions (api-version 1.1).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from werkzeug.datastructures import MIMEAccept
from werkzeug.http import parse_accept_header

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


def negotiate(accept: MIMEAccept | str | None) -> str:
    """The content type to answer with. Nothing acceptable falls back to HTML, as PyPI does.

    Each offer's quality is that of the most specific range matching it (RFC 9110); equal
    qualities go to the server's order, whatever the ranges' specificity, so `*/*` next to a
    JSON type still gets HTML (werkzeug's best_match would prefer the more specific range)."""
    if not isinstance(accept, MIMEAccept):
        accept = parse_accept_header(accept, MIMEAccept)
    q, _, offer = max((accept.quality(o), -i, o) for i, o in enumerate(OFFERS))
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
    # PEP 740: the file's provenance object (Integrity API), relative like `url`.
    provenance: str | None = None


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
        provenance=(
            f"../../integrity/{project}/{quote(f.version)}/{quote(f.filename)}/provenance"
            if f.provenance_sha256
            else None
        ),
    )


# Autoescaped, and independent of any app: the root index is rendered once and cached.
_PAGES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "templates" / "simple"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=StrictUndefined,
)
_PAGES.filters["quote"] = quote


def index_html(projects: list[str]) -> str:
    return _PAGES.get_template("index.html").render(
        api_version=API_VERSION, title="Simple index", projects=projects
    )


def index_json(projects: list[str]) -> str:
    return json.dumps(
        {"meta": {"api-version": API_VERSION}, "projects": [{"name": p} for p in projects]}
    )


def project_html(project: str, files: list[FileView]) -> str:
    return _PAGES.get_template("project.html").render(
        api_version=API_VERSION, title=f"Links for {project}", files=files
    )


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
            # PEP 740: a URL of the provenance object, or null.
            "provenance": f.provenance,
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
