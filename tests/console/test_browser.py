"""The console in a real browser: Debian's chromium driven by Playwright. The scenarios a new
user walks through, with screenshots saved under build/screenshots/ (`make screenshots` copies
the main ones into docs/console/)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.clients.conftest import make_clients, release
from tests.conftest import require_tool
from tests.console.test_actions import new_user
from tests.pypi.conftest import clean_env
from tests.pypi.dists import make_wheel, unique, upload
from tests.support.client import OCIClient
from tests.support.server import ROOT

SHOTS = Path(os.environ.get("CARGOHOLD_SCREENSHOTS", ROOT / "build" / "screenshots"))
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    require_tool("chromium")
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        # Debian's chromium, never a browser build Playwright would download.
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


@pytest.fixture
def open_page(browser, server):
    contexts = []

    def make(user: str | None = None, password: str | None = None, width: int = 1280):
        ctx = browser.new_context(
            base_url=server.url, viewport={"width": width, "height": 900}, device_scale_factor=1
        )
        ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
        contexts.append(ctx)
        page = ctx.new_page()
        page.dialogs = []

        def on_dialog(dialog):
            page.dialogs.append(dialog.message)
            dialog.accept()

        page.on("dialog", on_dialog)
        if user:
            sign_in(page, user, password or server.users[user])
        return page

    yield make
    for ctx in contexts:
        ctx.close()


def sign_in(page, user: str, password: str) -> None:
    page.goto("/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button:has-text('Sign in')")
    page.wait_for_selector(f"text=Welcome, {user}")


def shot(page, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def clipboard(page) -> str:
    return page.evaluate("navigator.clipboard.readText()")


def test_sign_in_page_is_the_front_door(open_page):
    page = open_page()
    page.goto("/")
    assert page.locator("h1").inner_text() == "Sign in to Cargohold"
    shot(page, "sign-in")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "not-the-password")
    page.click("button:has-text('Sign in')")
    assert page.locator(".notice.error").inner_text() == "Wrong username or password."


def test_browse_to_the_referrers_of_a_signed_image_with_an_oras_sbom(open_page, server, tmp_path):
    require_tool("oras")
    repo = unique("web/shop")
    ref = f"{server.host}/acme/main/{repo}:1.0"
    OCIClient(server.url, "alice", server.users["alice"]).push_image(
        f"acme/main/{repo}", "1.0", [b"shop-layer"]
    )
    c = make_clients(server, tmp_path / "oras", "alice")
    c.oras("login", "-u", "alice", "-p", c.password, server.host)
    (c.home / "sbom.spdx.json").write_text('{"spdxVersion": "SPDX-2.3", "name": "shop"}')
    (c.home / "shop.sig").write_text("signature bytes")
    c.oras("attach", "--artifact-type", "application/spdx+json", ref, "sbom.spdx.json")
    c.oras(
        "attach",
        "--artifact-type",
        "application/vnd.dev.cosign.artifact.sig.v1+json",
        ref,
        "shop.sig",
    )

    page = open_page("alice")
    shot(page, "home")
    page.click("main >> a[href='/orgs/acme']")
    page.wait_for_selector("h1:has-text('acme')")
    shot(page, "organisation")
    page.click("a[href='/orgs/acme/main']")
    page.wait_for_selector("#connect")
    page.fill("input[name=q]", repo)
    page.click("button:has-text('Apply')")
    page.click(f"a:has-text('{repo}')")
    page.wait_for_selector("h2:has-text('Tags')")
    shot(page, "repository")
    page.click("table >> a:has-text('1.0')")
    page.wait_for_selector("h2:has-text('Referrers')")
    tree = page.locator("ul.tree")
    assert tree.locator(".badge:has-text('SBOM')").count() == 1
    assert tree.locator(".badge:has-text('signature')").count() == 1
    shot(page, "artifact")
    tree.locator("li:has(.badge:has-text('SBOM')) >> a").first.click()
    page.wait_for_selector("text=Attached to")
    assert page.locator("td >> a:has-text('sbom.spdx.json')").count() == 1
    with page.expect_download() as download:
        page.click("a:has-text('sbom.spdx.json')")
    assert "SPDX-2.3" in Path(download.value.path()).read_text()


def test_token_created_seen_once_and_revoked(open_page, server):
    page = open_page("alice")
    page.goto("/account")
    name = unique("ci-")
    page.fill("input[name=name]", name)
    page.select_option("select[name=scope]", "read")
    page.click("button:has-text('Create token')")
    secret = page.locator("#token-secret").inner_text().strip()
    assert secret.startswith("chp_")
    page.locator("#new-token button.copy").click()
    assert clipboard(page) == secret
    shot(page, "account-new-token")
    assert requests.get(f"{server.url}/api/v1/user", auth=("alice", secret)).status_code == 200
    page.reload()
    assert secret not in page.content()
    page.locator(f"tr:has(td:text-is('{name}')) >> button:has-text('Revoke')").click()
    page.wait_for_selector(".notice:has-text('revoked')")
    assert any("Revoke token" in d for d in page.dialogs)
    assert requests.get(f"{server.url}/api/v1/user", auth=("alice", secret)).status_code == 401


def test_invite_a_member_who_accepts(open_page, server):
    name, password = new_user(server, "newcomer")
    admin = open_page("admin")
    admin.goto("/orgs/acme")
    admin.fill("input[name=invitee]", name)
    admin.select_option("form:has(input[name=invitee]) >> select[name=role]", "writer")
    admin.click("button:has-text('Invite')")
    admin.wait_for_selector(f".notice:has-text('Invited {name} as writer')")
    shot(admin, "organisation-admin")
    person = open_page(name, password)
    person.goto("/account")
    person.click("li:has-text('acme') >> button:has-text('Accept')")
    person.wait_for_selector(".notice:has-text('You joined acme as writer')")
    assert person.locator("h1").inner_text() == "acme"


def run_snippet(text: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", text],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, f"{text}\nexited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def copy_snippet(page, client: str) -> str:
    block = page.locator(f"details[data-client={client}]")
    if block.get_attribute("open") is None:
        block.locator("summary").click()
    block.locator("button.copy").click()
    return clipboard(page)


def test_connect_panel_podman_snippet_runs_as_shown(open_page, server, tmp_path):
    require_tool("podman")
    page = open_page("alice")
    page.goto("/orgs/acme/main")
    snippet = copy_snippet(page, "podman")
    shot(page, "registry-connect")
    assert "--tls-verify=false" in snippet  # the test server is plain http
    c = make_clients(server, tmp_path / "podman", "alice")
    try:
        (tmp_path / "hello.txt").write_text("hello from the connect panel\n")
        (tmp_path / "Containerfile").write_text("FROM scratch\nCOPY hello.txt /hello.txt\n")
        c.podman("build", "-t", "myimage:latest", str(tmp_path))
        run_snippet(snippet, {**c.env, "CARGOHOLD_PASSWORD": c.password}, c.home)
    finally:
        release(c)
    oci = OCIClient(server.url, "alice", server.users["alice"])
    assert oci.request("GET", "/v2/acme/main/myimage/tags/list").json()["tags"] == ["latest"]


def test_connect_panel_pip_snippet_installs_and_skips_a_yanked_file(open_page, server, tmp_path):
    project = unique("pipdemo")
    for version in ("1.0", "1.1"):
        wheel = make_wheel(tmp_path, project, version)
        r = upload(
            f"{server.url}/api/v1/acme/main/python/",
            wheel,
            project,
            version,
            ("alice", server.users["alice"]),
        )
        assert r.status_code == 200, r.text
    page = open_page("alice")
    page.goto("/orgs/acme/main")
    snippet = copy_snippet(page, "pip")
    install = snippet.splitlines()[0].replace("PROJECT", project)
    assert install.startswith("pip install --trusted-host 127.0.0.1 --index-url ")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {
        **clean_env(tmp_path / "home"),
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "CARGOHOLD_PASSWORD": server.users["alice"],
    }
    run_snippet(install, env, tmp_path)
    assert version_installed(venv, project) == "1.1"

    page.goto(f"/orgs/acme/main/python/{project}")
    page.fill("input[name=reason]", "broken build")
    page.click("button:has-text('Yank')")
    page.wait_for_selector(".badge:has-text('yanked')")
    shot(page, "python-project")
    run_snippet(f"pip uninstall -y {shlex.quote(project)}", env, tmp_path)
    run_snippet(install, env, tmp_path)
    assert version_installed(venv, project) == "1.0"


def version_installed(venv: Path, project: str) -> str:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "show", project],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return next(line.split(": ", 1)[1] for line in out.splitlines() if line.startswith("Version"))


def test_hostile_annotations_and_descriptions_do_not_run(open_page, content):
    page = open_page("admin")
    for path in (
        f"/orgs/acme/main/r/{content.repo}/-/manifests/{content.image}",
        f"/orgs/acme/main/python/{content.project}",
        f"/orgs/acme/main/r/{content.repo}",
    ):
        page.goto(path)
        # Our own script ran (it reveals the copy buttons), so scripts were not simply off.
        page.wait_for_selector("button.copy:visible")
        assert page.evaluate("window.__xss") is None, path
    assert page.dialogs == []
    shot(page, "artifact-hostile")


def test_pages_read_at_phone_width(open_page, content):
    page = open_page("victor", width=390)
    page.goto(f"/orgs/acme/main/r/{content.repo}/-/manifests/{content.image}")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    shot(page, "phone-artifact")
