"""A registry's signing keys and signature policy, for its administrators: register a key
(PEM), retire one, turn "pull requires a valid signature" on or off (docs/supply-chain.md)."""

from __future__ import annotations

from flask import redirect, request, url_for

from app.access import ORG_ADMIN
from app.access.policy import find_registry
from app.console.blueprint import bp, form_of
from app.console.templating import notice
from app.errors import Invalid, NotFound
from app.gate import requires
from app.models import Registry
from app.registry.signing import keys

KEYS = "/orgs/<org>/<registry>/signing-keys"


def _registry(org: str, registry: str) -> Registry:
    reg = find_registry(org, registry)
    if reg is None:
        raise NotFound(f"no registry {org}/{registry}")
    return reg


def _back(org: str, registry: str):
    return redirect(url_for("console.registry", org=org, registry=registry) + "#signing-keys")


@bp.route(KEYS, methods=["POST"])
@requires(ORG_ADMIN, "org")
@form_of("console.registry")
def add_signing_key(org: str, registry: str):
    reg = _registry(org, registry)
    name = request.form.get("name", "").strip()
    row = keys.add(reg.id, name, request.form.get("pem", ""))
    notice(f"Signing key {row.name} registered ({row.algorithm}).")
    return _back(org, registry)


@bp.route(KEYS + "/<int:key_id>/retire", methods=["POST"])
@requires(ORG_ADMIN, "org")
@form_of("console.registry")
def retire_signing_key(org: str, registry: str, key_id: int):
    row = keys.retire(keys.find(_registry(org, registry).id, key_id))
    notice(f"Signing key {row.name} retired: its signatures no longer count.")
    return _back(org, registry)


@bp.route("/orgs/<org>/<registry>/signature-policy", methods=["POST"])
@requires(ORG_ADMIN, "org")
@form_of("console.registry")
def set_signature_policy(org: str, registry: str):
    choice = request.form.get("require_signature", "")
    if choice not in ("true", "false"):
        raise Invalid("Choose whether pulls require a signature.")
    keys.set_policy(_registry(org, registry).id, choice == "true")
    state = "now require" if choice == "true" else "no longer require"
    notice(f"Pulls from {org}/{registry} {state} a valid signature.")
    return _back(org, registry)
