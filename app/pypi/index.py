"""The Simple API's root index, rendered from the core's index rows (`app.registry.python.files`)
and kept per registry while its set of projects is unchanged."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from app.caching import BoundedCache
from app.pypi import simple
from app.registry.python.files import Target, index_version, project_names


@dataclass(frozen=True)
class Page:
    """A rendered page, encoded once, with its ETag: hashing megabytes of a big index on every
    request would cost more than the rest of the request."""

    body: bytes
    etag: str

    @classmethod
    def of(cls, text: str, content_type: str) -> Page:
        body = text.encode()
        digest = hashlib.sha256(content_type.encode() + b"\n" + body).hexdigest()[:40]
        return cls(body, digest)


# Rendered root indexes per registry and content type, reused while the registry's set of
# projects is unchanged (`index_version`): one cheap aggregate query instead of listing and
# rendering thousands of names on every request. Per worker; a miss just renders again.
_ROOT_PAGES: BoundedCache[tuple[int, str], tuple[tuple[int, int], Page]] = BoundedCache(256)


def root_page(target: Target, content_type: str) -> Page:
    """The Simple API root index, in the negotiated content type."""
    key = (target.registry.id, content_type)
    version = index_version(target)
    cached = _ROOT_PAGES.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    render = simple.index_json if simple.is_json(content_type) else simple.index_html
    page = Page.of(render(project_names(target)), content_type)
    _ROOT_PAGES.put(key, (version, page))
    return page
