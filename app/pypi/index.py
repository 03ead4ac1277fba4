"""The Simple API's root index, rendered from the core's index rows (`app.registry.python.files`)
and kept per registry while its set of projects is unchanged."""

from __future__ import annotations

from app.caching import BoundedCache
from app.pypi import simple
from app.registry.python.files import Target, index_version, project_names

# Rendered root indexes per registry and content type, reused while the registry's set of
# projects is unchanged (`index_version`): one cheap aggregate query instead of listing and
# rendering thousands of names on every request. Per worker; a miss just renders again.
_ROOT_PAGES: BoundedCache[tuple[int, str], tuple[tuple[int, int], str]] = BoundedCache(256)


def root_page(target: Target, content_type: str) -> str:
    """The Simple API root index, in the negotiated content type."""
    key = (target.registry.id, content_type)
    version = index_version(target)
    cached = _ROOT_PAGES.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    render = simple.index_json if simple.is_json(content_type) else simple.index_html
    body = render(project_names(target))
    _ROOT_PAGES.put(key, (version, body))
    return body
