"""The layers of docs/architecture.md, enforced: every `app` import points one way.

    blueprints (oci, pypi, api, auth, console) -> HTTP pieces (web, gate, auth.credentials,
    auth.tokens) -> core (registry -> access) -> ports (storage, identity, models) -> leaves
    (errors, digests, config, caching, filemodes, limits)

The app factory (`app/__init__.py`) and the CLI assemble everything and may import anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from app import create_app
from app.config import Settings
from app.errors import Invalid
from app.models import Organisation, db

APP = Path(__file__).resolve().parent.parent / "app"

LEAVES = ("app.errors", "app.digests", "app.config", "app.caching", "app.filemodes", "app.limits")
# The HTTP server's own pieces (gunicorn's worker, its request bodies, log filters): they see
# settings and each other, not the app.
SERVER = ("app.http_worker", "app.http_body", "app.logfilters")
PORTS = ("app.storage", "app.identity", "app.models")
CORE = ("app.registry", "app.access")
HTTP = ("app.web", "app.gate", "app.auth.credentials", "app.auth.tokens", "app.ops.metrics")
BLUEPRINTS = ("app.oci", "app.pypi", "app.api", "app.auth", "app.console")


def _within(module: str, prefixes: tuple[str, ...]) -> str | None:
    for prefix in prefixes:
        if module == prefix or module.startswith(prefix + "."):
            return prefix
    return None


def allowed_targets(module: str) -> tuple[str, ...] | None:
    """The prefixes a module may import from; None: anything (the composition roots)."""
    if module == "app" or _within(module, ("app.cli",)):
        return None
    if _within(module, ("app.ops",)) and module != "app.ops.metrics":
        # Observability wraps every blueprint (route names, request ids, probes of every backend).
        return None
    if _within(module, LEAVES):
        return LEAVES
    if _within(module, SERVER):
        return LEAVES + SERVER
    if _within(module, PORTS):
        return LEAVES + PORTS
    if _within(module, ("app.access",)):
        return LEAVES + PORTS + ("app.access",)  # the registry builds on access, not back
    if _within(module, CORE):
        return LEAVES + PORTS + CORE
    if _within(module, HTTP):
        return LEAVES + PORTS + CORE + HTTP
    blueprint = _within(module, BLUEPRINTS)
    if blueprint:
        return LEAVES + PORTS + CORE + HTTP + (blueprint,)  # never another blueprint
    raise AssertionError(f"{module} is in no layer: add it to tests/test_architecture.py")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(APP.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "app":
                found += [(node.lineno, f"app.{alias.name}") for alias in node.names]
            elif node.module.startswith("app."):
                found.append((node.lineno, node.module))
            elif node.module == "flask":
                found += [(node.lineno, f"flask.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
    return found


SOURCES = sorted(APP.rglob("*.py"))


def violations(path: Path, module: str | None = None) -> list[str]:
    module = module or module_name(path)
    targets = allowed_targets(module)
    wrong = []
    for line, target in imports(path):
        where = f"{path.name}:{line}"
        if target == "flask.request" and _within(module, CORE + PORTS + LEAVES):
            wrong.append(f"{where}: {module} reads the request; pass what it needs instead")
        if not target.startswith("app.") or targets is None:
            continue
        if _within(target, (module,)) or _within(module, (target,)):
            continue  # a package and its own modules
        if not _within(target, targets):
            wrong.append(f"{where}: {module} imports {target} against the layers")
    return wrong


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(APP.parent)))
def test_imports_point_one_way(path: Path):
    wrong = violations(path)
    assert not wrong, "\n".join(wrong)


def test_the_check_can_fail(tmp_path: Path):
    """A storage backend importing the registry core, and OCI importing PyPI, are caught."""
    store, oci = tmp_path / "store.py", tmp_path / "oci.py"
    store.write_text("from app.registry import blobs\nfrom app.digests import parse\n")
    oci.write_text("from app.pypi.names import normalize\nfrom app.registry import blobs\n")
    assert len(violations(store, "app.storage.offending")) == 1
    assert len(violations(oci, "app.oci.offending")) == 1
    core = tmp_path / "core.py"
    core.write_text("from flask import current_app, request\n")
    assert len(violations(core, "app.registry.offending")) == 1


def test_a_route_without_a_requirement_stops_the_app(tmp_path: Path):
    from flask import Blueprint

    from app import gate

    app = create_app(Settings(data_dir=tmp_path))
    bp = Blueprint("undeclared", __name__)
    bp.add_url_rule("/undeclared", "page", lambda: "open to all")
    app.register_blueprint(bp)
    with pytest.raises(RuntimeError, match="GET undeclared.page"):
        gate.verify(app)


# ---- the unit of work ------------------------------------------------------------------------


@pytest.fixture
def app(tmp_path: Path):
    app = create_app(Settings(data_dir=tmp_path))
    with app.app_context():
        db.create_all()
    return app


def test_a_request_that_fails_leaves_nothing_behind(app):
    """Core functions flush; the request's unit of work commits only when the view returns."""
    from app.web import _transactional

    def adds_then_refuses():
        db.session.add(Organisation(name="half-done"))
        db.session.flush()
        raise Invalid("refused after a write")

    def adds():
        db.session.add(Organisation(name="done"))
        db.session.flush()
        return "ok"

    with app.test_request_context():
        with pytest.raises(Invalid):
            _transactional(adds_then_refuses)()
        assert _transactional(adds)() == "ok"
    with app.app_context():
        names = set(db.session.execute(db.select(Organisation.name)).scalars())
    assert names == {"done"}
