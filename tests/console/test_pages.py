"""Every console page: what it shows, to whom, and what it hides."""

from __future__ import annotations

import pytest
import requests

from tests.console.conftest import XSS


def test_root_shows_sign_in_when_signed_out(console_for):
    r = console_for().get("/")
    assert r.status_code == 200
    assert "Sign in to Cargohold" in r.text
    assert 'name="csrf_token"' in r.text


def test_home_lists_my_organisations_and_recent_pushes(console_for, content):
    r = console_for("alice").get("/")
    assert r.status_code == 200
    assert "Welcome, alice" in r.text
    assert 'href="/orgs/acme"' in r.text
    assert 'href="/orgs/other"' not in r.text
    assert content.repo in r.text


def test_organisation_page(console_for):
    r = console_for("victor").get("/orgs/acme")
    assert r.status_code == 200
    for name in ("main", "public", "second", "alice", "victor"):
        assert name in r.text
    assert "public</span>" in r.text and "private</span>" in r.text
    # Admin-only parts are hidden from a viewer.
    assert "Invite" not in r.text and "Robots" not in r.text
    admin = console_for("admin").get("/orgs/acme")
    assert "Invite" in admin.text and "Robots" in admin.text and "Registry grants" in admin.text


def test_outsiders_see_no_organisation(console_for):
    assert console_for("mallory").get("/orgs/acme").status_code == 404
    r = console_for().get("/orgs/acme")
    assert r.status_code == 302 and "/sign-in?next=" in r.headers["Location"]


def test_registry_page_lists_repositories_and_connect(console_for, content, server):
    c = console_for("alice")
    r = c.get("/orgs/acme/main")
    assert r.status_code == 200
    assert content.repo in r.text
    assert content.project in r.text
    assert f"podman login --tls-verify=false -u alice --password-stdin {server.host}" in r.text
    assert "pip install --trusted-host 127.0.0.1 --index-url" in r.text and "twine upload" in r.text
    filtered = c.get("/orgs/acme/main?q=" + content.repo.split("/")[-1])
    assert content.repo in filtered.text
    none = c.get("/orgs/acme/main?q=zzz-no-such-thing")
    assert content.repo not in none.text and "No repository matches" in none.text
    assert c.get("/orgs/acme/main?sort=pushed&page=abc").status_code == 200


def test_public_registry_readable_signed_out(console_for):
    assert console_for().get("/orgs/other/public").status_code == 200
    r = console_for().get("/orgs/other/private")
    assert r.status_code == 302


def test_private_registry_hidden_from_outsiders(console_for, content):
    c = console_for("mallory")
    assert c.get("/orgs/acme/main").status_code == 404
    assert c.get(f"/orgs/acme/main/r/{content.repo}").status_code == 404
    assert c.get(f"/orgs/acme/main/r/{content.repo}/-/manifests/{content.image}").status_code == 404


def test_repository_page(console_for, content):
    r = console_for("victor").get(f"/orgs/acme/main/r/{content.repo}")
    assert r.status_code == 200
    assert ">v1</a>" in r.text and ">multi</a>" in r.text
    assert "multi-arch index" in r.text and "signature" in r.text and "SBOM" in r.text
    assert content.image[:19] in r.text
    assert "podman pull" in r.text
    # A viewer sees no delete buttons.
    assert "/delete" not in r.text
    assert "/delete" in console_for("alice").get(f"/orgs/acme/main/r/{content.repo}").text


def test_repository_page_sizes_and_platforms(console_for, server):
    """Each row's size is the content it stands for (manifest, config, layers; an index with its
    platform images, each blob once; attached artifacts apart), an index lists its platforms."""
    import json

    from tests.pypi.dists import unique
    from tests.support.client import OCIClient, digest_of

    admin = OCIClient(server.url, "admin", server.admin_password)
    path = unique("sizes/app")
    repo = f"acme/main/{path}"
    amd, amd_manifest = admin.push_image(repo, "amd", [b"a" * 1000, b"shared" * 100])
    arm, arm_manifest = admin.push_image(repo, "arm", [b"b" * 2000, b"shared" * 100])
    config_size = amd_manifest["config"]["size"]
    amd_size, arm_size = (len(json.dumps(m).encode()) for m in (amd_manifest, arm_manifest))
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {
                "mediaType": amd_manifest["mediaType"],
                "digest": amd,
                "size": amd_size,
                "platform": {"os": "linux", "architecture": "amd64"},
            },
            {
                "mediaType": arm_manifest["mediaType"],
                "digest": arm,
                "size": arm_size,
                "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"},
            },
        ],
    }
    assert admin.push_manifest(repo, "multi", index).status_code == 201
    # A signature attached to the amd64 image: not part of the image's size.
    sig_layer = admin.push_blob(repo, b"s" * 5000)
    empty = admin.push_blob(repo, b"{}")
    signature = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.dev.cosign.artifact.sig.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{"mediaType": "application/octet-stream", "digest": sig_layer, "size": 5000}],
        "subject": {"mediaType": amd_manifest["mediaType"], "digest": amd, "size": amd_size},
    }
    sig_body = json.dumps(signature).encode()
    assert admin.push_manifest(repo, digest_of(sig_body), signature).status_code == 201

    page = console_for("victor").get(f"/orgs/acme/main/r/{path}").text
    image = amd_size + config_size + 1000 + 600
    assert f'title="{image} bytes"' in page
    index_size = len(json.dumps(index).encode()) + amd_size + arm_size
    index_size += config_size + 1000 + 2000 + 600  # the shared layer and config once
    assert f'title="{index_size} bytes"' in page
    assert f'title="{len(sig_body) + 2 + 5000} bytes"' in page
    row = page.split(">multi</a>", 1)[1].split("</tr>", 1)[0]
    assert "linux/amd64" in row and "linux/arm64/v8" in row


def test_artifact_page_with_referrers_tree(console_for, content):
    c = console_for("victor")
    r = c.get(f"/orgs/acme/main/r/{content.repo}/-/manifests/v1")
    assert r.status_code == 302 and content.image in r.headers["Location"]
    r = c.get(f"/orgs/acme/main/r/{content.repo}/-/manifests/{content.image}")
    assert r.status_code == 200
    assert "org.opencontainers.image.description" in r.text
    assert "application/vnd.oci.image.layer.v1.tar" in r.text
    for digest in (content.signature, content.sbom, content.attestation):
        assert digest[:19] in r.text
    # The attestation hangs under the SBOM, one level deeper.
    assert r.text.index(content.sbom[:19]) < r.text.index(content.attestation[:19])
    idx = c.get(f"/orgs/acme/main/r/{content.repo}/-/manifests/{content.index}")
    assert "linux/amd64" in idx.text and "linux/arm64/v8" in idx.text
    sig = c.get(f"/orgs/acme/main/r/{content.repo}/-/manifests/{content.signature}")
    assert "evidence.json" in sig.text and "Attached to" in sig.text


def test_blob_download_through_the_repository_link(console_for, content):
    c = console_for("victor")
    # On S3 the answer is a redirect to a presigned URL, as for the protocols.
    r = c.get(f"/orgs/acme/main/r/{content.repo}/-/blobs/{content.config}", allow_redirects=True)
    assert r.status_code == 200 and b"amd64" in r.content
    # The name asked for, filtered; a non-ASCII one also in RFC 8187's form beside an ASCII one.
    named = c.get(
        f"/orgs/acme/main/r/{content.repo}/-/blobs/{content.config}",
        params={"filename": 'naïve "cfg";.json'},
    )
    assert named.status_code == 200 and named.content == r.content
    # A range is read from where it starts (on S3, a ranged read of the object).
    tail = c.get(
        f"/orgs/acme/main/r/{content.repo}/-/blobs/{content.config}", headers={"Range": "bytes=5-"}
    )
    assert tail.status_code == 206 and tail.content == r.content[5:]
    assert named.headers["Content-Disposition"] == (
        "inline; filename=naivecfg.json; filename*=UTF-8''na%C3%AFvecfg.json"
    )
    zero = "sha256:" + "0" * 64
    assert c.get(f"/orgs/acme/main/r/{content.repo}/-/blobs/{zero}").status_code == 404
    assert c.get(f"/orgs/acme/main/r/{content.repo}/-/blobs/nonsense").status_code == 404


def test_python_project_page(console_for, content):
    c = console_for("victor")
    r = c.get(f"/orgs/acme/main/python/{content.project}")
    assert r.status_code == 200
    assert f"{content.project} 1.1" in r.text
    assert '<h1 id="user-content-demo-heading">Demo heading' in r.text
    assert "<strong>bold</strong>" in r.text
    assert "requests&gt;=2" in r.text and "&gt;=3.8" in r.text
    assert "py3-none-any" in r.text
    assert r.text.index(">1.1<") < r.text.index(">1.0<")
    old = c.get(f"/orgs/acme/main/python/{content.project}?version=1.0")
    assert f"{content.project} 1.0" in old.text
    assert c.get(f"/orgs/acme/main/python/{content.project.upper()}").status_code == 302
    assert c.get("/orgs/acme/main/python/no-such-project").status_code == 404


@pytest.mark.parametrize(
    "path",
    [
        "/orgs/acme/main/r/{repo}/-/manifests/{image}",
        "/orgs/acme/main/python/{project}",
        "/orgs/acme/main",
    ],
)
def test_hostile_metadata_is_escaped(console_for, content, path):
    r = console_for("admin").get(
        path.format(repo=content.repo, image=content.image, project=content.project)
    )
    assert r.status_code == 200
    assert "<script>window.__xss" not in r.text
    assert 'onerror="window' not in r.text and 'href="javascript:' not in r.text
    assert "default-src 'self'" in r.headers["Content-Security-Policy"]
    if "manifests" in path:
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;" in r.text
        assert "com.example.&lt;b&gt;key&lt;/b&gt;" in r.text
    assert XSS not in r.text


def test_search(console_for, content):
    c = console_for("victor")
    r = c.get("/search?q=" + content.repo.split("/")[-1][:10])
    assert r.status_code == 200 and content.repo in r.text
    r = c.get("/search?q=arm64-on")
    assert "arm64-only" in r.text
    r = c.get("/search?q=" + content.project[:8])
    assert content.project in r.text
    # mallory sees nothing of acme's private registry.
    r = console_for("mallory").get("/search?q=" + content.repo.split("/")[-1])
    assert content.repo not in r.text
    assert console_for().get("/search?q=x").status_code == 302
    assert c.get("/search?q=%25_%5C").status_code == 200


def test_friendly_errors(console_for):
    c = console_for("alice")
    r = c.get("/no/such/page")
    assert (
        r.status_code == 404
        and "Nothing here" in r.text
        and "text/html" in r.headers["Content-Type"]
    )
    # Protocol paths keep their own error format.
    assert (
        c.get("/v2/acme/main/none/manifests/x")
        .headers["Content-Type"]
        .startswith("application/json")
    )


def test_account_page(console_for):
    r = console_for("alice").get("/account")
    assert r.status_code == 200
    assert "Personal access tokens" in r.text and "Change password" in r.text


def test_helm_chart_fields(console_for, content):
    c = console_for("victor")
    r = c.get(f"/orgs/acme/main/r/{content.repo}-chart")
    assert "Helm chart" in r.text
    r = c.get(f"/orgs/acme/main/r/{content.repo}-chart/-/manifests/0.3.1", allow_redirects=True)
    assert "<h2>Helm chart</h2>" in r.text
    assert "shop&lt;script&gt;" in r.text and "0.3.1" in r.text and "appVersion" in r.text


def test_server_errors_are_a_friendly_page_that_leaks_nothing(tmp_path):
    from app import create_app
    from app.config import Settings

    app = create_app(Settings(data_dir=tmp_path))

    def boom():
        raise RuntimeError("secret internals /etc/passwd")

    app.add_url_rule("/boom", "boom", boom)
    app.add_url_rule("/api/v1/boom", "api_boom", boom)
    r = app.test_client().get("/boom")
    assert r.status_code == 500
    body = r.get_data(as_text=True)
    assert "Something went wrong" in body and "secret internals" not in body
    api = app.test_client().get("/api/v1/boom")
    assert api.status_code == 500 and api.is_json and "secret" not in api.get_data(as_text=True)


def test_registry_sorts_by_name_and_by_last_push(console_for, server):
    from tests.pypi.dists import unique
    from tests.support.client import OCIClient

    marker = unique("sort")
    oci = OCIClient(server.url, "admin", server.admin_password)
    oci.push_image(f"acme/second/{marker}/aaa", "v1", [b"older"])
    oci.push_image(f"acme/second/{marker}/zzz", "v1", [b"newer"])
    c = console_for("victor")
    by_name = c.get(f"/orgs/acme/second?q={marker}").text
    assert by_name.index(f"{marker}/aaa") < by_name.index(f"{marker}/zzz")
    by_push = c.get(f"/orgs/acme/second?q={marker}&sort=pushed").text
    assert by_push.index(f"{marker}/zzz") < by_push.index(f"{marker}/aaa")


def test_home_lists_registries_shared_through_a_grant(console_for, server):
    import secrets

    from tests.pypi.dists import unique

    name, password = unique("guest"), secrets.token_urlsafe(12)
    server.flask("user", "create", name, "--password", password)
    requests.put(
        f"{server.url}/api/v1/orgs/acme/registries/second/grants/{name}",
        json={"role": "viewer"},
        auth=("admin", server.admin_password),
    ).raise_for_status()
    c = console_for()
    c.sign_in(name, password)
    home = c.get("/").text
    assert 'href="/orgs/acme/second"' in home and 'href="/orgs/acme"' not in home
    assert c.get("/orgs/acme/second").status_code == 200
    assert c.get("/orgs/acme").status_code == 404
    assert c.get("/orgs/acme/main").status_code == 404
