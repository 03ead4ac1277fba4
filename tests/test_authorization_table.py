"""Every route × every kind of caller × own tenant / other tenant / public registry.

The expected outcomes are written out by hand below, from the role table in
docs/tenancy.md, not computed by the code under test. A route the application serves that is
missing from REQUIREMENTS fails `test_every_route_is_in_the_table`.

Requests carry harmless input (empty bodies, unknown ids), so an allowed call answers 2xx or a
4xx about the input, and a denied one answers 401, 403, or the 404 that hides an organisation.
"""

from __future__ import annotations

import secrets
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from app import create_app
from app.config import Settings
from app.gate import DeclaredRoute, declared_routes
from tests.console.conftest import Console
from tests.pypi.dists import make_wheel, upload
from tests.support.client import OCIClient
from tests.support.server import make_server
from tests.support.services import Backend

# ---- what each route needs -------------------------------------------------------------------
# "pull", "push", "delete": on the target registry; "org:read", "org:admin": on its
# organisation; "account:read", "account:manage", "org:create": the caller's own account;
# "public": anyone; "login", "catalog": anyone who presents credentials (the /v2/ challenge
# endpoints; the catalog lists only what the caller may pull).
REQUIREMENTS: dict[str, str] = {
    # token service
    "GET auth.token_get": "public",
    "POST auth.token_post": "public",
    # OCI distribution
    "GET oci.base": "login",
    "HEAD oci.base": "login",
    "GET oci.catalog_list": "catalog",
    "HEAD oci.catalog_list": "catalog",
    "GET oci:get_manifest": "pull",
    "HEAD oci:get_manifest": "pull",
    "PUT oci:put_manifest": "push",
    "DELETE oci:delete_manifest": "delete",
    "GET oci:get_blob": "pull",
    "HEAD oci:get_blob": "pull",
    "DELETE oci:delete_blob": "delete",
    "POST oci:start_upload": "push",
    "GET oci:upload_status": "push",
    "HEAD oci:upload_status": "push",
    "PATCH oci:patch_upload": "push",
    "PUT oci:put_upload": "push",
    "DELETE oci:cancel_upload": "push",
    "GET oci:list_tags": "pull",
    "HEAD oci:list_tags": "pull",
    "GET oci:list_referrers": "pull",
    "HEAD oci:list_referrers": "pull",
    # Python packages
    "POST pypi.upload": "push",
    "GET pypi.index_redirect": "pull",
    "GET pypi.index": "pull",
    "GET pypi.project_redirect": "pull",
    "GET pypi.project_page": "pull",
    "GET pypi.download": "pull",
    "GET pypi.provenance_object": "pull",
    "GET pypi.project_detail": "pull",
    "POST pypi.yank_file": "push",
    "DELETE pypi.yank_file": "push",
    "POST pypi.yank_release": "push",
    "DELETE pypi.yank_release": "push",
    "DELETE pypi.delete_file": "delete",
    "DELETE pypi.delete_release": "delete",
    # operations: probes are public; metrics are public unless CARGOHOLD_METRICS_TOKEN is set
    # (this server sets none; tests/test_operations.py covers the token)
    "GET ops.healthz": "public",
    "GET ops.readyz": "public",
    "GET ops.metrics": "public",
    # management API
    "GET api.openapi_json": "public",
    "POST api.oidc_exchange": "public",
    "GET api.get_user": "account:read",
    "POST api.change_password": "account:manage",
    "PUT api.reset_password": "site:admin",
    "GET api.list_tokens": "account:read",
    "POST api.create_token": "account:manage",
    "DELETE api.revoke_token": "account:manage",
    "GET api.my_invitations": "account:read",
    "POST api.accept_invitation": "account:manage",
    "POST api.decline_invitation": "account:manage",
    "POST api.create_org": "org:create",
    "GET api.get_org": "org:read",
    "GET api.list_registries": "org:read",
    "POST api.create_registry": "org:admin",
    "PATCH api.update_registry": "org:admin",
    "GET api.list_grants": "org:admin",
    "PUT api.put_grant": "org:admin",
    "DELETE api.delete_grant": "org:admin",
    "GET api.list_members": "org:read",
    "PUT api.put_member": "org:admin",
    "DELETE api.delete_member": "org:admin",
    "GET api.list_org_invitations": "org:admin",
    "POST api.create_invitation": "org:admin",
    "DELETE api.cancel_invitation": "org:admin",
    "GET api.list_robots": "org:admin",
    "POST api.create_robot": "org:admin",
    "DELETE api.delete_robot": "org:admin",
    "GET api.list_robot_tokens": "org:admin",
    "POST api.create_robot_token": "org:admin",
    "DELETE api.revoke_robot_token": "org:admin",
    "GET api.list_trust_policies": "org:admin",
    "POST api.create_trust_policy": "org:admin",
    "DELETE api.delete_trust_policy": "org:admin",
    "GET api.gc_status": "site:admin",
    "DELETE api.delete_manifest": "delete",
    "GET api.list_tag_rules": "org:read",
    "POST api.create_tag_rule": "org:admin",
    "DELETE api.delete_tag_rule": "org:admin",
    "GET api.list_signing_keys": "org:read",
    "POST api.add_signing_key": "org:admin",
    "POST api.retire_signing_key": "org:admin",
    "DELETE api.delete_signing_key": "org:admin",
    "GET api.get_signature_policy": "org:read",
    "PUT api.put_signature_policy": "org:admin",
    "GET api.manifest_signatures": "pull",
    "GET api.org_audit": "org:admin",
    "GET api.site_audit": "site:admin",
    "GET api.get_audit_settings": "org:admin",
    "PUT api.put_audit_settings": "org:admin",
    "GET api.vulnerability_database": "public",
    "GET api.manifest_vulnerabilities": "pull",
    "GET api.python_vulnerabilities": "pull",
    "GET api.get_vulnerability_policy": "org:read",
    "PUT api.put_vulnerability_policy": "org:admin",
    "GET api.list_vulnerability_allowlist": "org:read",
    "POST api.add_vulnerability_allowance": "org:admin",
    "DELETE api.delete_vulnerability_allowance": "org:admin",
    "GET api.get_org_quota": "org:read",
    "PUT api.put_org_quota": "site:admin",
    "GET api.get_registry_quota": "org:read",
    "PUT api.put_registry_quota": "site:admin",
    "GET api.list_quotas": "site:admin",
    "GET api.list_retention_policies": "org:admin",
    "POST api.create_retention_policy": "org:admin",
    "PATCH api.update_retention_policy": "org:admin",
    "DELETE api.delete_retention_policy": "org:admin",
    "GET api.retention_report": "org:admin",
    # web console: pages and form actions (callers as CONSOLE_AS below says)
    "GET console.home": "public",
    "GET console.sign_in": "public",
    "POST console.sign_in": "public",
    "POST console.sign_out": "public",
    "GET console.cognito_sign_in": "public",
    "GET console.cognito_callback": "public",
    "GET console.search": "account:read",
    "GET console.account": "account:read",
    "POST console.create_token": "account:manage",
    "POST console.revoke_token": "account:manage",
    "POST console.change_password": "account:manage",
    "POST console.answer_invitation": "account:manage",
    "GET console.organisation": "org:read",
    "POST console.invite_member": "org:admin",
    "POST console.cancel_invitation": "org:admin",
    "POST console.change_role": "org:admin",
    "POST console.remove_member": "org:admin",
    "POST console.create_registry": "org:admin",
    "POST console.set_visibility": "org:admin",
    "POST console.add_signing_key": "org:admin",
    "POST console.retire_signing_key": "org:admin",
    "POST console.set_signature_policy": "org:admin",
    "POST console.grant_registry": "org:admin",
    "POST console.revoke_grant": "org:admin",
    "POST console.create_robot": "org:admin",
    "POST console.delete_robot": "org:admin",
    "POST console.create_robot_token": "org:admin",
    "POST console.revoke_robot_token": "org:admin",
    "POST console.create_trust_policy": "org:admin",
    "POST console.delete_trust_policy": "org:admin",
    "GET console.audit": "org:admin",
    "POST console.set_pull_audit": "org:admin",
    "GET console.registry": "pull",
    "GET console.repository": "pull",
    "GET console.artifact": "pull",
    "GET console.download_blob": "pull",
    "POST console.delete_tag": "delete",
    "POST console.delete_manifest": "delete",
    "GET console.python_project": "pull",
    "POST console.yank_file": "push",
    "POST console.delete_file": "delete",
}

# Targets: A = acme/main (private, acme), P = other/private, Q = other/public.
TARGETS = {"A": ("acme", "main"), "P": ("other", "private"), "Q": ("other", "public")}
ALL = frozenset(TARGETS)
# This server signs people in locally: Cognito's sign-in pages answer every caller alike, with
# the 404 page (tests/aws/test_cognito_sign_in.py covers them with a pool).
UNCONFIGURED = {"GET console.cognito_sign_in", "GET console.cognito_callback"}
NONE: frozenset[str] = frozenset()

# Callers: alice writer of acme, victor viewer of acme, admin admin of acme, mallory admin of
# other, a robot of acme with writer on acme/main only, and alice's read-only token. Every caller
# but "admin-password" authenticates with a read-write access token of its own.
CALLERS = (
    "anonymous",
    "viewer",
    "writer",
    "admin",
    "admin-password",
    "outsider",
    "robot",
    "read-token",
)

# ALLOWED[requirement][caller] = the targets where the call is allowed.
_pull = {"anonymous": {"Q"}, "outsider": {"P", "Q"}}
ALLOWED: dict[str, dict[str, frozenset[str]]] = {
    "public": dict.fromkeys(CALLERS, ALL),
    "login": {c: (NONE if c == "anonymous" else ALL) for c in CALLERS},
    "pull": {c: frozenset(_pull.get(c, {"A", "Q"})) for c in CALLERS},
    "push": {
        "anonymous": NONE,
        "viewer": NONE,
        "writer": frozenset({"A"}),
        "admin": frozenset({"A"}),
        "admin-password": frozenset({"A"}),
        "outsider": frozenset({"P", "Q"}),
        "robot": frozenset({"A"}),
        "read-token": NONE,
    },
    "org:read": {
        "anonymous": NONE,
        "viewer": frozenset({"A"}),
        "writer": frozenset({"A"}),
        "admin": frozenset({"A"}),
        "admin-password": frozenset({"A"}),
        "outsider": frozenset({"P", "Q"}),
        "robot": NONE,
        "read-token": frozenset({"A"}),
    },
    "org:admin": {
        "anonymous": NONE,
        "viewer": NONE,
        "writer": NONE,
        "admin": frozenset({"A"}),
        "admin-password": frozenset({"A"}),
        "outsider": frozenset({"P", "Q"}),
        "robot": NONE,
        "read-token": NONE,
    },
    "account:read": {c: (NONE if c in ("anonymous", "robot") else ALL) for c in CALLERS},
    # Tokens never manage the account that owns them.
    "account:manage": {c: (ALL if c == "admin-password" else NONE) for c in CALLERS},
    # The site admin, with a password (never a token).
    "site:admin": {c: (ALL if c == "admin-password" else NONE) for c in CALLERS},
    "org:create": {
        c: (ALL if c in ("viewer", "writer", "admin", "admin-password", "outsider") else NONE)
        for c in CALLERS
    },
}
ALLOWED["delete"] = ALLOWED["push"]
ALLOWED["catalog"] = ALLOWED["login"]

# The console admits people signed in with their password, nothing else: robots and access
# tokens cannot sign in, so those callers browse it signed out. A person's console session
# carries their full rights, as their password does.
CONSOLE_AS = {
    "anonymous": "anonymous",
    "robot": "anonymous",
    "read-token": "anonymous",
    "viewer": "viewer",
    "writer": "writer",
    "admin": "admin-password",
    "admin-password": "admin-password",
    "outsider": "outsider",
}
PEOPLE = ("viewer", "writer", "admin", "admin-password", "outsider")
CONSOLE_ALLOWED: dict[str, dict[str, frozenset[str]]] = {
    # Signed in with a password, everyone manages their own account.
    "account:manage": {c: (ALL if c in PEOPLE else NONE) for c in CALLERS},
}


def expected_targets(requirement: str, caller: str, console: bool) -> frozenset[str]:
    if not console:
        return ALLOWED[requirement][caller]
    if requirement in CONSOLE_ALLOWED:
        return CONSOLE_ALLOWED[requirement][caller]
    return ALLOWED[requirement][CONSOLE_AS[caller]]


def declared() -> list[DeclaredRoute]:
    """Every (method, endpoint) the application serves, from the gate's declarations."""
    app = create_app(Settings(data_dir=Path(tempfile.mkdtemp(prefix="cargohold-routes-"))))
    return list(declared_routes(app))


DECLARED = declared()
INVENTORY = {f"{r.method} {r.endpoint}": r.rule for r in DECLARED}
# HEAD is served wherever GET is, under the same requirement; the table lists it where a
# protocol asks for it (OCI), and the other HEADs follow their GET.
IMPLIED = {k for k in INVENTORY if k.startswith("HEAD ") and "GET" + k[4:] in REQUIREMENTS}


def test_every_route_is_in_the_table():
    missing = sorted(set(INVENTORY) - set(REQUIREMENTS) - IMPLIED)
    stale = sorted(set(REQUIREMENTS) - set(INVENTORY))
    assert not missing, f"routes without an authorization rule in the table: {missing}"
    assert not stale, f"table rows for routes that no longer exist: {stale}"


def test_every_route_declares_what_the_table_expects():
    """The requirement declared beside each route is the one the role table gives it."""
    wrong = [
        f"{r.method} {r.endpoint}: declares {r.requirement.label if r.requirement else None}, "
        f"the table says {REQUIREMENTS[f'{r.method} {r.endpoint}']}"
        for r in DECLARED
        if f"{r.method} {r.endpoint}" in REQUIREMENTS
        and (
            r.requirement is None or r.requirement.label != REQUIREMENTS[f"{r.method} {r.endpoint}"]
        )
    ]
    assert not wrong, "\n".join(wrong)


# ---- a server of its own, so other tests' changes cannot move the outcomes --------------------


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    backend = Backend()
    srv = make_server(tmp_path_factory.mktemp("authz"), extra_env=backend.env())
    srv.start()
    try:
        api = f"{srv.url}/api/v1"
        admin = ("admin", srv.users["admin"])
        r = requests.post(f"{api}/orgs/acme/robots", json={"name": "table"}, auth=admin)
        assert r.status_code == 201, r.text
        requests.put(
            f"{api}/orgs/acme/registries/main/grants/acme+table",
            json={"role": "writer"},
            auth=admin,
        ).raise_for_status()

        def token(user: str, password: str, body: dict, path: str = "/tokens") -> str:
            r = requests.post(f"{api}{path}", json=body, auth=(user, password))
            assert r.status_code == 201, r.text
            return r.json()["token"]

        creds: dict[str, tuple[str, str] | None] = {"anonymous": None}
        for caller, user in (
            ("viewer", "victor"),
            ("writer", "alice"),
            ("admin", "admin"),
            ("outsider", "mallory"),
        ):
            creds[caller] = (user, token(user, srv.users[user], {"name": "table"}))
        creds["admin-password"] = admin
        creds["robot"] = (
            "acme+table",
            token("admin", srv.users["admin"], {"name": "t"}, "/orgs/acme/robots/table/tokens"),
        )
        creds["read-token"] = (
            "alice",
            token("alice", srv.users["alice"], {"name": "ro", "scope": "read"}),
        )
        content = {}
        wheel = make_wheel(tmp_path_factory.mktemp("authz-dists"), "tablepkg", "1.0")
        for key, (org, reg) in TARGETS.items():
            owner = "admin" if org == "acme" else "mallory"
            c = OCIClient(srv.url, owner, srv.users[owner])
            digest, manifest = c.push_image(
                f"{org}/{reg}/table/app", "v1", [b"table-" + key.encode()]
            )
            content[key] = (digest, manifest["config"]["digest"])
            r = upload(
                f"{api}/{org}/{reg}/python/", wheel, "tablepkg", "1.0", (owner, srv.users[owner])
            )
            assert r.status_code == 200, r.text
        consoles = {}
        for caller in CALLERS:
            console = Console(srv.url)
            person = {"viewer": "victor", "writer": "alice", "outsider": "mallory"}.get(
                caller, "admin" if caller.startswith("admin") else None
            )
            if person:
                console.sign_in(person, srv.users[person])
            else:
                console.get("/sign-in")
            consoles[caller] = console
        yield srv, creds, content, consoles
    finally:
        srv.stop()
        backend.cleanup()


ZERO = "sha256:" + "0" * 64


def request_for(key: str, rule: str, target: str, content) -> tuple[str, str, dict]:
    """Method, path and request arguments that reach this route harmlessly."""
    method, endpoint = key.split(" ", 1)
    org, reg = TARGETS[target]
    if endpoint.startswith("oci:"):
        repo = f"/v2/{org}/{reg}/table/app"
        manifest_digest, config_digest = content[target]
        handler = endpoint[4:]
        paths = {
            "get_manifest": f"{repo}/manifests/v1",
            "put_manifest": f"{repo}/manifests/v2",
            "delete_manifest": f"{repo}/manifests/{ZERO}",
            "get_blob": f"{repo}/blobs/{config_digest}",
            "delete_blob": f"{repo}/blobs/{ZERO}",
            "start_upload": f"{repo}/blobs/uploads/",
            "list_tags": f"{repo}/tags/list",
            "list_referrers": f"{repo}/referrers/{manifest_digest}",
        }
        path = paths.get(handler, f"{repo}/blobs/uploads/{secrets.token_hex(16)}")
        kwargs: dict = {}
        if handler == "put_manifest":
            kwargs = {
                "data": b"{}",
                "headers": {"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
            }
        return method, path, kwargs
    values = {
        "org": org,
        "registry": reg,
        "username": "nobody-here",
        "name": "nobody",
        "int:token_id": "999999",
        "int:invitation_id": "999999",
        "int:policy_id": "999999",
        "int:rule_id": "999999",
        "int:key_id": "999999",
        "reference": ZERO,
        "project": "nothing",
        "filename": "nothing-1.0.tar.gz",
        "version": "1.0",
        "path:repository": "table/app",
        "digest": ZERO,
        "advisory_id": "NOTHING-1",
    }
    if endpoint.startswith("console."):
        manifest_digest, config_digest = content[target]
        values.update(
            {
                "path:repo": "table/app",
                "reference": manifest_digest,
                "digest": config_digest,
                "tag": "nothing",
                "project": "tablepkg",
                "any(yank,unyank):how": "unyank",
                "any(accept,decline):answer": "decline",
            }
        )
    path = rule
    for placeholder, value in values.items():
        path = path.replace(f"<{placeholder}>", value)
    assert "<" not in path, f"no test value for a parameter of {rule}"
    kwargs = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    if key == "POST auth.token_post":
        kwargs = {"data": {}}
    return method, path, kwargs


def denied(response: requests.Response) -> bool:
    if response.status_code in (401, 403):
        return True
    if response.status_code == 302 and "/sign-in" in response.headers.get("Location", ""):
        return True  # the console sends signed-out callers to sign in
    if response.status_code == 404 and response.headers.get("Content-Type", "").startswith(
        "text/html"
    ):
        # The console's answer to outsiders; every console request here names existing things.
        return True
    if (
        response.status_code == 404
        and response.content
        and response.headers.get("Content-Type", "").startswith("application/json")
    ):
        errors = response.json().get("errors") or [{}]
        message = str(errors[0].get("message", ""))
        # The management API's answer to outsiders: the organisation seems not to exist.
        return message.startswith("organisation ") and message.endswith(" not found")
    return False


def console_request(session: Console, key: str, method: str, path: str) -> requests.Response:
    """A request from the caller's console session, with its CSRF token on forms. Each goes
    from a copy of the session's cookies, so signing out ends no one else's session."""
    http = requests.Session()
    http.cookies.update(session.http.cookies)
    if method == "GET":
        return http.get(session.base + path, allow_redirects=False)
    data = {"csrf_token": session.csrf}
    if key == "POST console.sign_in":
        data = {}  # no token: refused before any password is checked or any failure counted
    return http.post(session.base + path, data=data, allow_redirects=False)


@pytest.mark.parametrize("key", sorted(REQUIREMENTS))
def test_route_authorization(world, key):
    srv, creds, content, consoles = world
    if key not in INVENTORY:
        pytest.fail(f"{key} is in the table but not served")
    rule = INVENTORY[key]
    console = key.split(" ", 1)[1].startswith("console.")

    def check(case: tuple[str, str]) -> str | None:
        caller, target = case
        method, path, kwargs = request_for(key, rule, target, content)
        if console:
            r = console_request(consoles[caller], key, method, path)
        else:
            r = requests.request(
                method, srv.url + path, auth=creds[caller], allow_redirects=False, **kwargs
            )
        if key in UNCONFIGURED:
            return None if r.status_code == 404 else f"{caller}: {r.status_code}, not the 404 page"
        want_allowed = target in expected_targets(REQUIREMENTS[key], caller, console)
        if want_allowed == denied(r) or r.status_code >= 500:
            return (
                f"{caller} on {target} ({method} {path}): expected "
                f"{'allowed' if want_allowed else 'denied'}, got {r.status_code} {r.text[:120]}"
            )
        return None

    cases = [(caller, target) for caller in CALLERS for target in TARGETS]
    with ThreadPoolExecutor(8) as pool:
        wrong = [w for w in pool.map(check, cases) if w]
    assert not wrong, "\n".join(wrong)
