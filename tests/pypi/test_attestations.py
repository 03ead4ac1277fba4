"""PEP 740 attestations: real ones (signed in GitHub Actions and GitLab CI against Sigstore's
production instance, from pypi-attestations' own test assets) uploaded with twine
`--attestations` and as a raw form, verified offline, served back by the Integrity API and named
by the Simple API; tampered ones refused with nothing stored; CI uploads through a trust policy
recorded with their workload identity."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

from tests.console.conftest import Console
from tests.pypi import attestation_assets, testdata
from tests.pypi.conftest import BIN, Index, make_venv, run, twine, uv_publish
from tests.pypi.dists import make_sdist, make_wheel, unique, upload
from tests.support.oidc_issuer import Issuer

GITHUB_SDIST = "pypi_attestations-0.0.19.tar.gz"
GITLAB_SDIST = "gitlab_oidc_project-0.0.3.tar.gz"
GITHUB_PUBLISHER = {
    "kind": "GitHub",
    "repository": "trailofbits/pypi-attestations",
    "workflow": "release.yml",
    "environment": None,
}
GITLAB_PUBLISHER = {
    "kind": "GitLab",
    "repository": "facutuesca/gitlab-oidc-project",
    "workflow_filepath": ".gitlab-ci.yml",
    "environment": None,
}
INTEGRITY = "application/vnd.pypi.integrity.v1+json"
JSON_V1 = "application/vnd.pypi.simple.v1+json"


@pytest.fixture(scope="module")
def assets() -> Path:
    return testdata.required(attestation_assets.ensure, "PEP 740 test assets")


@pytest.fixture
def index(server) -> Index:
    """A registry of its own, so each test starts with no files."""
    name = unique("attest")
    r = requests.post(
        f"{server.url}/api/v1/orgs/acme/registries",
        json={"name": name},
        auth=("admin", server.users["admin"]),
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return Index(server, "acme", name, user="admin")


def attestation(assets: Path, sdist: str) -> dict:
    return json.loads((assets / f"{sdist}.publish.attestation").read_text())


def simple_json(index: Index, project: str) -> dict:
    r = requests.get(
        f"{index.simple}{project}/", headers={"Accept": JSON_V1}, auth=index.auth, timeout=30
    )
    assert r.status_code == 200, r.text
    return r.json()


def file_entry(index: Index, project: str, filename: str) -> dict:
    return next(f for f in simple_json(index, project)["files"] if f["filename"] == filename)


def provenance_of(index: Index, project: str, filename: str) -> requests.Response:
    url = file_entry(index, project, filename)["provenance"]
    assert url, f"no provenance URL for {filename}"
    return requests.get(urljoin(f"{index.simple}{project}/", url), auth=index.auth, timeout=30)


def detail(index: Index, project: str, filename: str) -> dict:
    r = requests.get(f"{index.base}/projects/{project}", auth=index.auth, timeout=30)
    assert r.status_code == 200, r.text
    return next(f for f in r.json()["files"] if f["filename"] == filename)


def raw_upload(index: Index, path: Path, project: str, release: str, attestations, **kw):
    field = attestations if isinstance(attestations, str) else json.dumps(attestations)
    return upload(
        index.upload_url, path, project, release, kw.pop("auth", index.auth), attestations=field
    )


def nothing_stored(index: Index, project: str) -> None:
    r = requests.get(f"{index.simple}{project}/", auth=index.auth, timeout=30)
    assert r.status_code == 404, r.text
    r = requests.get(f"{index.base}/projects/{project}", auth=index.auth, timeout=30)
    assert r.status_code == 404, r.text


# ---- twine and a raw form ---------------------------------------------------------------------


def test_twine_uploads_attestations_and_the_integrity_api_serves_them(index, assets, tmp_path, env):
    dist = tmp_path / "dist"
    dist.mkdir()
    for name in (GITHUB_SDIST, f"{GITHUB_SDIST}.publish.attestation"):
        shutil.copy(assets / name, dist / name)
    proc = twine(index, sorted(dist.iterdir()), env, "--attestations")
    assert proc.returncode == 0, proc.stdout + proc.stderr

    entry = file_entry(index, "pypi-attestations", GITHUB_SDIST)
    assert entry["provenance"] == (
        f"../../integrity/pypi-attestations/0.0.19/{GITHUB_SDIST}/provenance"
    )
    r = provenance_of(index, "pypi-attestations", GITHUB_SDIST)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == INTEGRITY
    served = r.json()
    assert served["version"] == 1
    (bundle,) = served["attestation_bundles"]
    # The publisher PyPI itself shows for this file, and the attestation exactly as uploaded.
    pypi = json.loads((assets / f"{GITHUB_SDIST}.provenance").read_text())
    assert bundle["publisher"] == pypi["attestation_bundles"][0]["publisher"] == GITHUB_PUBLISHER
    assert bundle["attestations"] == [attestation(assets, GITHUB_SDIST)]

    html = requests.get(f"{index.simple}pypi-attestations/", auth=index.auth, timeout=30).text
    assert f'data-provenance="{entry["provenance"]}"' in html

    row = detail(index, "pypi-attestations", GITHUB_SDIST)
    assert row["attestations"]["publisher"] == GITHUB_PUBLISHER
    assert row["attestations"]["established_by"] == "certificate"
    assert row["attestations"]["predicate_types"] == [
        "https://docs.pypi.org/attestations/publish/v1"
    ]
    assert row["attestations"]["provenance"].endswith(f"/{GITHUB_SDIST}/provenance")
    assert row["workload_identity"] is None

    # The attestations are an OCI referrer of the file's artifact; its first layer is the
    # provenance object the Integrity API serves, byte for byte.
    repo = f"{index.server.url}/v2/acme/{index.registry}/cargohold.pypi/pypi-attestations"
    found = requests.get(
        f"{repo}/referrers/{row['manifest_digest']}", auth=index.auth, timeout=30
    ).json()["manifests"]
    assert [m["artifactType"] for m in found] == [INTEGRITY]
    manifest = requests.get(
        f"{repo}/manifests/{found[0]['digest']}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        auth=index.auth,
        timeout=30,
    ).json()
    assert manifest["subject"]["digest"] == row["manifest_digest"]
    assert [layer["mediaType"] for layer in manifest["layers"]] == [
        INTEGRITY,
        "application/vnd.pypi.attestation.v1+json",
    ]
    layer = requests.get(
        f"{repo}/blobs/{manifest['layers'][0]['digest']}", auth=index.auth, timeout=30
    )
    assert layer.content == r.content


def test_pip_and_uv_install_from_pages_with_provenance(index, assets, tmp_path, env):
    assert raw_upload(
        index,
        assets / GITHUB_SDIST,
        "pypi-attestations",
        "0.0.19",
        [attestation(assets, GITHUB_SDIST)],
    ).ok
    # A wheel of the same release, without attestations, for the installers to pick.
    wheel = make_wheel(tmp_path, "pypi-attestations", "0.0.19")
    assert upload(index.upload_url, wheel, "pypi-attestations", "0.0.19", index.auth).ok
    assert file_entry(index, "pypi-attestations", wheel.name)["provenance"] is None
    py = make_venv(tmp_path / "venv", env)
    pip = [str(py), "-m", "pip", "install", "--no-deps", "--index-url", index.index_url]
    run([*pip, "pypi-attestations==0.0.19"], env)
    run([str(py), "-m", "pip", "uninstall", "-y", "pypi-attestations"], env)
    uv = [str(BIN / "uv"), "pip", "install", "--python", str(py), "--no-deps"]
    run([*uv, "--index-url", index.index_url, "pypi-attestations==0.0.19"], env)
    listed = run([str(py), "-m", "pip", "list", "--format=json"], env).stdout
    assert {"name": "pypi-attestations", "version": "0.0.19"} in [
        {"name": p["name"], "version": p["version"]} for p in json.loads(listed)
    ]


def test_a_raw_form_upload_with_a_gitlab_attestation(index, assets):
    r = raw_upload(
        index,
        assets / GITLAB_SDIST,
        "gitlab-oidc-project",
        "0.0.3",
        [attestation(assets, GITLAB_SDIST)],
    )
    assert r.status_code == 200, r.text
    served = provenance_of(index, "gitlab-oidc-project", GITLAB_SDIST).json()
    assert served["attestation_bundles"][0]["publisher"] == GITLAB_PUBLISHER


def test_uv_publish_sends_the_attestations_beside_a_file(index, assets, tmp_path, env):
    dist = tmp_path / "dist"
    dist.mkdir()
    for name in (GITLAB_SDIST, f"{GITLAB_SDIST}.publish.attestation"):
        shutil.copy(assets / name, dist / name)
    # As `uv publish dist/*`: the attestation is grouped with the file it names.
    proc = uv_publish(index, sorted(dist.iterdir()), env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    served = provenance_of(index, "gitlab-oidc-project", GITLAB_SDIST).json()
    assert served["attestation_bundles"][0]["attestations"] == [attestation(assets, GITLAB_SDIST)]


def test_the_integrity_api_without_provenance_is_404(index, tmp_path):
    wheel = make_wheel(tmp_path, "plainpkg", "1.0")
    assert upload(index.upload_url, wheel, "plainpkg", "1.0", index.auth).ok
    base = f"{index.base}/integrity/plainpkg"
    r = requests.get(f"{base}/1.0/{wheel.name}/provenance", auth=index.auth, timeout=30)
    assert r.status_code == 404
    assert r.json() == {"message": f"No provenance available for {wheel.name}"}
    r = requests.get(f"{base}/2.0/{wheel.name}/provenance", auth=index.auth, timeout=30)
    assert r.status_code == 404 and "message" in r.json()
    r = requests.get(f"{base}/1.0/{wheel.name}/provenance", timeout=30)
    assert r.status_code == 401


def test_deleting_the_file_takes_its_attestations(index, assets):
    assert raw_upload(
        index,
        assets / GITHUB_SDIST,
        "pypi-attestations",
        "0.0.19",
        [attestation(assets, GITHUB_SDIST)],
    ).ok
    row = detail(index, "pypi-attestations", GITHUB_SDIST)
    r = requests.delete(
        f"{index.base}/projects/pypi-attestations/files/{GITHUB_SDIST}", auth=index.auth, timeout=30
    )
    assert r.status_code == 200, r.text
    repo = f"{index.server.url}/v2/acme/{index.registry}/cargohold.pypi/pypi-attestations"
    r = requests.get(f"{repo}/referrers/{row['manifest_digest']}", auth=index.auth, timeout=30)
    assert r.json()["manifests"] == []


# ---- refusals ---------------------------------------------------------------------------------


def flipped_signature(item: dict) -> dict:
    tampered = json.loads(json.dumps(item))
    signature = bytearray(base64.b64decode(tampered["envelope"]["signature"]))
    signature[len(signature) // 2] ^= 0x01
    tampered["envelope"]["signature"] = base64.b64encode(bytes(signature)).decode()
    return tampered


def test_tampered_attestations_are_refused_and_nothing_is_stored(index, assets, tmp_path):
    good = attestation(assets, GITHUB_SDIST)
    sdist = assets / GITHUB_SDIST
    project = "pypi-attestations"

    def refused(path: Path, release: str, field, why: str) -> None:
        r = raw_upload(index, path, project, release, field)
        assert r.status_code == 400, (why, r.status_code, r.text)
        assert why in r.reason, (why, r.reason)
        assert r.text.strip() == r.reason

    refused(sdist, "0.0.19", [flipped_signature(good)], "Could not verify")
    # Another file under the attested filename: the subject's digest is not this file's.
    other = make_sdist(tmp_path, project, "0.0.19", filename=GITHUB_SDIST)
    refused(other, "0.0.19", [good], "subject does not match distribution digest")
    # The attested bytes under another filename.
    renamed = tmp_path / "pypi_attestations-0.0.20.tar.gz"
    shutil.copy(sdist, renamed)
    refused(renamed, "0.0.20", [good], "subject does not match distribution name")
    # Another project's genuine attestation.
    refused(sdist, "0.0.19", [attestation(assets, GITLAB_SDIST)], "does not match")
    # A statement field edited after signing.
    edited = json.loads(json.dumps(good))
    statement = json.loads(base64.b64decode(edited["envelope"]["statement"]))
    statement["subject"][0]["digest"]["sha256"] = "0" * 64
    edited["envelope"]["statement"] = base64.b64encode(json.dumps(statement).encode()).decode()
    refused(sdist, "0.0.19", [edited], "Could not verify")
    # A certificate that is not one.
    garbled = json.loads(json.dumps(good))
    garbled["verification_material"]["certificate"] = base64.b64encode(b"not DER").decode()
    refused(sdist, "0.0.19", [garbled], "Could not verify")
    # Malformed or unbounded fields, refused before anything is verified.
    refused(sdist, "0.0.19", "not json", "Invalid attestations")
    refused(sdist, "0.0.19", {"version": 1}, "Invalid attestations")
    refused(sdist, "0.0.19", [], "Invalid attestations")
    refused(sdist, "0.0.19", [{"version": 2}], "Invalid attestations")
    refused(sdist, "0.0.19", [good] * 5, "at most 4 attestations")
    refused(sdist, "0.0.19", [good, good], "at most one attestation of each predicate type")
    refused(sdist, "0.0.19", "[" + "1," * 200_000 + "1]", "larger than 256 KiB")
    nothing_stored(index, project)
    # Nothing was spent either: the genuine attestation still goes through.
    assert raw_upload(index, sdist, project, "0.0.19", [good]).status_code == 200


# ---- CI uploads through a trust policy --------------------------------------------------------


@pytest.fixture(scope="module")
def issuer():
    i = Issuer()
    yield i
    i.close()


def ci_robot(server, issuer: Issuer, registry: str, claims: dict[str, str]) -> str:
    admin = ("admin", server.users["admin"])
    api = f"{server.url}/api/v1"
    name = unique("ci")
    r = requests.post(f"{api}/orgs/acme/robots", json={"name": name}, auth=admin, timeout=30)
    assert r.status_code == 201, r.text
    robot = f"acme+{name}"
    r = requests.put(
        f"{api}/orgs/acme/registries/{registry}/grants/{robot}",
        json={"role": "writer"},
        auth=admin,
        timeout=30,
    )
    assert r.ok, r.text
    r = requests.post(
        f"{api}/orgs/acme/trust-policies",
        json={
            "name": unique("release"),
            "robot": robot,
            "issuer": issuer.url,
            "audience": "cargohold",
            "claims": claims,
        },
        auth=admin,
        timeout=30,
    )
    assert r.status_code == 201, r.text
    return robot


GITHUB_CLAIMS = {
    "repository": "trailofbits/pypi-attestations",
    "repository_owner": "trailofbits",
    "workflow_ref": "trailofbits/pypi-attestations/.github/workflows/release.yml@refs/tags/v0.0.19",
    "ref": "refs/tags/v0.0.19",
    "sha": "08802efe1f8e5fec4ad842d6b8ce97656092ee72",
    "run_id": "12169989787",
}


def test_a_ci_upload_records_its_workload_and_its_attestations_must_match_it(
    server, index, assets, issuer, tmp_path, env
):
    robot = ci_robot(server, issuer, index.registry, {"repository": "trailofbits/*"})
    good = [attestation(assets, GITHUB_SDIST)]
    sdist = assets / GITHUB_SDIST
    # A workflow of the repository other than the one that signed: refused.
    other = {
        **GITHUB_CLAIMS,
        "workflow_ref": GITHUB_CLAIMS["workflow_ref"].replace("release", "ci"),
    }
    r = raw_upload(
        index, sdist, "pypi-attestations", "0.0.19", good, auth=(robot, issuer.token(**other))
    )
    assert r.status_code == 400 and "Could not verify" in r.reason, r.text
    # A workload naming no GitHub or GitLab workflow cannot vouch for any attestation.
    plain = issuer.token(repository="trailofbits/x")
    r = raw_upload(index, sdist, "pypi-attestations", "0.0.19", good, auth=(robot, plain))
    assert r.status_code == 400 and "names no GitHub Actions or GitLab CI" in r.reason, r.text
    nothing_stored(index, "pypi-attestations")

    # twine in the release job: the robot's name, the job's ID token as the password.
    subject = "repo:trailofbits/pypi-attestations:<script>alert(1)</script>"
    token = issuer.token(sub=subject, **GITHUB_CLAIMS)
    dist = tmp_path / "dist"
    dist.mkdir()
    for name in (GITHUB_SDIST, f"{GITHUB_SDIST}.publish.attestation"):
        shutil.copy(assets / name, dist / name)
    ci = Index(server, "acme", index.registry, user=None)
    proc = run(
        [
            str(BIN / "twine"),
            "upload",
            "--non-interactive",
            "--disable-progress-bar",
            "--attestations",
            "--repository-url",
            ci.upload_url,
            f"--username={robot}",
            f"--password={token}",
            *map(str, sorted(dist.iterdir())),
        ],
        env,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    row = detail(index, "pypi-attestations", GITHUB_SDIST)
    assert row["uploaded_by"] == robot
    assert row["attestations"]["established_by"] == "upload-identity"
    assert row["attestations"]["publisher"] == GITHUB_PUBLISHER
    workload = row["workload_identity"]
    assert workload["issuer"] == issuer.url and workload["subject"] == subject
    for claim in ("repository", "workflow_ref", "ref", "sha", "run_id"):
        assert workload[claim] == GITHUB_CLAIMS[claim]

    console = Console(server.url)
    console.sign_in("admin", server.users["admin"])
    page = console.get(f"/orgs/acme/{index.registry}/python/pypi-attestations").text
    assert "attested" in page and "trailofbits/pypi-attestations" in page
    assert GITHUB_CLAIMS["workflow_ref"] in page
    assert "<script>alert(1)</script>" not in page
    assert "repo:trailofbits/pypi-attestations:&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_token_from_the_oidc_exchange_carries_the_workload(server, index, assets, issuer):
    claims = {
        "project_path": "facutuesca/gitlab-oidc-project",
        "ci_config_ref_uri": (
            "gitlab.com/facutuesca/gitlab-oidc-project//.gitlab-ci.yml@refs/heads/main"
        ),
        "ref": "refs/heads/main",
        "pipeline_id": "1542399262",
    }
    robot = ci_robot(server, issuer, index.registry, {"project_path": "facutuesca/*"})
    sub = "project_path:facutuesca/gitlab-oidc-project:ref_type:branch:ref:main"
    r = requests.post(
        f"{server.url}/api/v1/oidc/token",
        json={"robot": robot, "id_token": issuer.token(sub=sub, **claims)},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    r = raw_upload(
        index,
        assets / GITLAB_SDIST,
        "gitlab-oidc-project",
        "0.0.3",
        [attestation(assets, GITLAB_SDIST)],
        auth=(robot, r.json()["token"]),
    )
    assert r.status_code == 200, r.text
    row = detail(index, "gitlab-oidc-project", GITLAB_SDIST)
    assert row["attestations"]["established_by"] == "upload-identity"
    assert row["attestations"]["publisher"] == GITLAB_PUBLISHER
    assert row["workload_identity"]["subject"] == sub
    assert row["workload_identity"]["ci_config_ref_uri"] == claims["ci_config_ref_uri"]


# ---- offline ----------------------------------------------------------------------------------


def test_verification_needs_no_network(assets, monkeypatch):
    """The trusted root is the one sigstore-python ships; nothing is fetched to verify."""
    import socket

    from app.pypi import attestations

    def refuse(*_args, **_kw):
        raise AssertionError("verification tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    attestations._verifier.cache_clear()
    raw = json.dumps([attestation(assets, GITHUB_SDIST)])
    digest = testdata.sha256(assets / GITHUB_SDIST)
    verified, established_by = attestations.verify(raw, GITHUB_SDIST, digest, None)
    assert verified.publisher == GITHUB_PUBLISHER and established_by == "certificate"


def test_the_workload_identity_keeps_known_claims_bounded():
    from app.access import workload
    from app.access.policy import Principal

    claims = {
        "iss": "https://token.actions.githubusercontent.com/",
        "sub": "repo:acme/app:ref:refs/heads/main",
        "repository": "acme/app",
        "workflow_ref": "acme/app/.github/workflows/release.yml@refs/heads/main",
        "run_id": 12345,
        "ref": "x" * 2000,
        "environment": None,
        "runner_environment": "github-hosted",
        "aud": "cargohold",
        "exp": 1,
        "job_id": True,
        "sha": {"not": "a string"},
    }
    found = workload.identity(claims)
    assert found == {
        "issuer": "https://token.actions.githubusercontent.com",
        "subject": "repo:acme/app:ref:refs/heads/main",
        "repository": "acme/app",
        "workflow_ref": "acme/app/.github/workflows/release.yml@refs/heads/main",
        "run_id": "12345",
        "ref": "x" * workload.MAX_VALUE,
    }
    # Registry tokens minted for such a principal carry the workload on.
    principal = Principal("robot", 7, "acme+ci", workload=tuple(sorted(found.items())))
    assert (
        Principal.from_claims({"kind": "robot", "uid": 7, "sub": "acme+ci", **principal.limits()})
        == principal
    )
    with_token = Principal("robot", 7, "acme+ci", token_id=3, workload=principal.workload)
    claims_out = {"kind": "robot", "uid": 7, "sub": "acme+ci", **with_token.limits()}
    assert Principal.from_claims(claims_out).workload == principal.workload
