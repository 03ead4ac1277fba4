"""/api/v1 signatures: a registry's signing keys (add, retire, remove), its "pull requires a
valid signature" policy, and the signature status of a manifest."""

from __future__ import annotations

from flask import current_app, jsonify

from app.access import ORG_ADMIN, ORG_READ
from app.access.policy import find_registry
from app.api.framework import ApiError, field_of, json_body, route
from app.models import Registry
from app.registry import manifest_store, repositories
from app.registry.names import parse_repository
from app.registry.signing import keys, verify

REGISTRY = "/orgs/<org>/registries/<registry>"


def _registry(org: str, registry: str) -> Registry:
    reg = find_registry(org, registry)
    if reg is None:
        raise ApiError(404, "NOT_FOUND", f"registry {org}/{registry} not found")
    return reg


def policy_json(reg: Registry) -> dict:
    row = keys.find_policy(reg.id)
    return {
        "require_signature": bool(row and row.require_signature),
        "exempt_writers": True if row is None else row.exempt_writers,
        "key_version": row.key_version if row else 0,
        "active_keys": keys.active_count(reg.id),
    }


@route("GET", f"{REGISTRY}/signing-keys", ORG_READ, "org")
def list_signing_keys(org: str, registry: str):
    """The public keys and certificates whose signatures the registry accepts."""
    reg = _registry(org, registry)
    return jsonify({"keys": [keys.describe(k) for k in keys.of_registry(reg.id)]})


@route(
    "POST",
    f"{REGISTRY}/signing-keys",
    ORG_ADMIN,
    "org",
    {"name": ("string", True), "pem": ("string", True)},
)
def add_signing_key(org: str, registry: str):
    """Register a public key or X.509 certificate (PEM) under a name."""
    reg = _registry(org, registry)
    data = json_body()
    row = keys.add(
        reg.id,
        field_of(data, "name", str, required=True),
        field_of(data, "pem", str, required=True),
    )
    resp = jsonify(keys.describe(row))
    resp.status_code = 201
    return resp


@route("POST", f"{REGISTRY}/signing-keys/<int:key_id>/retire", ORG_ADMIN, "org")
def retire_signing_key(org: str, registry: str, key_id: int):
    """Retire a key: kept on record, its signatures no longer count."""
    reg = _registry(org, registry)
    return jsonify(keys.describe(keys.retire(keys.find(reg.id, key_id))))


@route("DELETE", f"{REGISTRY}/signing-keys/<int:key_id>", ORG_ADMIN, "org")
def delete_signing_key(org: str, registry: str, key_id: int):
    """Remove a key from the registry altogether."""
    reg = _registry(org, registry)
    keys.remove(keys.find(reg.id, key_id))
    return "", 204


@route("GET", f"{REGISTRY}/signature-policy", ORG_READ, "org")
def get_signature_policy(org: str, registry: str):
    """Whether pulls from the registry require a valid signature."""
    return jsonify(policy_json(_registry(org, registry)))


@route(
    "PUT",
    f"{REGISTRY}/signature-policy",
    ORG_ADMIN,
    "org",
    {"require_signature": ("boolean", True), "exempt_writers": ("boolean", False)},
)
def put_signature_policy(org: str, registry: str):
    """Turn "pull requires a valid signature by one of the registry's keys" on or off."""
    reg = _registry(org, registry)
    data = json_body()
    require = field_of(data, "require_signature", bool, required=True)
    exempt = field_of(data, "exempt_writers", bool)
    keys.set_policy(reg.id, require, exempt)
    return jsonify(policy_json(reg))


@route(
    "GET",
    f"{REGISTRY}/repositories/<path:repository>/manifests/<reference>/signatures",
    "pull",
    "registry",
)
def manifest_signatures(org: str, registry: str, repository: str, reference: str):
    """The signatures found for a manifest (tag or digest) and whether they verify."""
    name = parse_repository(f"{org}/{registry}/{repository}")
    repo = repositories.require(name)
    manifest = manifest_store.find(repo, reference)
    store = current_app.extensions["cargohold.store"]
    status = verify.status_of(store, repo, manifest)
    return jsonify({"repository": name.full, "digest": manifest.digest, **status.as_json()})
