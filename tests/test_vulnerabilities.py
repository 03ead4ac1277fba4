"""Vulnerabilities, offline: OSV ranges and versions, SBOM parsing, `flask vulns import` of a
directory and a zip (hostile ones too), reports in the API, and the "block at severity >= X"
policy with its allow-list on OCI pulls and on pip / uv downloads."""

from __future__ import annotations

import json
import subprocess
import zipfile

import pytest
import requests

from app.registry.vulnerabilities import osv, sbom
from app.registry.vulnerabilities.versions import affects
from tests.pypi import dists
from tests.pypi.conftest import BIN, clean_env, make_venv, run
from tests.support.client import OCIClient
from tests.support.server import running_server
from tests.support.vulndata import (
    CRITICAL_V3,
    CYCLONEDX_TYPE,
    HIGH_V4,
    MEDIUM_V3,
    SPDX_TYPE,
    attach_sbom,
    cyclonedx,
    record,
    spdx,
    write_records,
)

# ---- ranges and versions, as the OSV specification evaluates them ----------------------------


def R(*events, type="ECOSYSTEM"):  # noqa: A002 - the schema's own word
    return [{"type": type, "events": list(events)}]


@pytest.mark.parametrize(
    ("version", "ranges", "versions", "hit"),
    [
        # introduced 0: every version before the fix
        ("0.0.1", R({"introduced": "0"}, {"fixed": "1.2"}), None, True),
        ("1.1.9", R({"introduced": "0"}, {"fixed": "1.2"}), None, True),
        ("1.2", R({"introduced": "0"}, {"fixed": "1.2"}), None, False),
        ("1.2.0", R({"introduced": "0"}, {"fixed": "1.2"}), None, False),  # PEP 440 equal
        ("2.0", R({"introduced": "0"}, {"fixed": "1.2"}), None, False),
        # introduced 0 alone: all versions
        ("99.0", R({"introduced": "0"}), None, True),
        # introduced bound is inclusive
        ("1.0", R({"introduced": "1.0"}, {"fixed": "1.5"}), None, True),
        ("0.9", R({"introduced": "1.0"}, {"fixed": "1.5"}), None, False),
        # last_affected is inclusive, beyond it is not affected
        ("2.1.214", R({"introduced": "0"}, {"last_affected": "2.1.214"}), None, True),
        ("2.1.215", R({"introduced": "0"}, {"last_affected": "2.1.214"}), None, False),
        # pre-releases of the fixed version are still affected; post-releases are not
        ("1.2rc1", R({"introduced": "0"}, {"fixed": "1.2"}), None, True),
        ("1.2.dev0", R({"introduced": "0"}, {"fixed": "1.2"}), None, True),
        ("1.2.post1", R({"introduced": "0"}, {"fixed": "1.2"}), None, False),
        # a pre-release as the introduction
        ("2.0b1", R({"introduced": "2.0a1"}, {"fixed": "2.0"}), None, True),
        ("1.9", R({"introduced": "2.0a1"}, {"fixed": "2.0"}), None, False),
        # several intervals in one range
        ("1.0.1", R({"introduced": "1.0"}, {"fixed": "1.0.2"}, {"introduced": "3.0"}), None, True),
        ("2.0", R({"introduced": "1.0"}, {"fixed": "1.0.2"}, {"introduced": "3.0"}), None, False),
        ("3.1", R({"introduced": "1.0"}, {"fixed": "1.0.2"}, {"introduced": "3.0"}), None, True),
        # events out of order are sorted first
        ("1.1", R({"fixed": "1.5"}, {"introduced": "1.0"}), None, True),
        # limit: only versions below a limit
        ("1.4", R({"introduced": "1.0"}, {"limit": "1.5"}), None, True),
        ("1.6", R({"introduced": "1.0"}, {"limit": "1.5"}), None, False),
        ("1.6", R({"introduced": "1.0"}, {"limit": "*"}), None, True),
        # an explicit versions list, whatever the ranges say
        ("1.7", None, ["1.7", "1.8"], True),
        ("1.7.0", None, ["1.7"], True),
        ("1.9", None, ["1.7", "1.8"], False),
        # GIT ranges name commits, never a package version
        ("1.0", R({"introduced": "0"}, type="GIT"), None, False),
        # an unparsable version matches nothing by range
        ("not a version", R({"introduced": "0"}), None, False),
    ],
)
def test_pypi_ranges(version, ranges, versions, hit):
    assert affects(version, "pypi", ranges, versions) is hit


@pytest.mark.parametrize(
    ("ecosystem", "version", "ranges", "versions", "hit"),
    [
        ("npm", "4.17.20", R({"introduced": "0"}, {"fixed": "4.17.21"}, type="SEMVER"), None, True),
        (
            "npm",
            "4.17.21",
            R({"introduced": "0"}, {"fixed": "4.17.21"}, type="SEMVER"),
            None,
            False,
        ),
        # SemVer 2.0 precedence: a pre-release sorts before its release, numerically
        (
            "npm",
            "2.0.0-rc.2",
            R({"introduced": "0"}, {"fixed": "2.0.0"}, type="SEMVER"),
            None,
            True,
        ),
        ("npm", "2.0.0-rc.10", R({"introduced": "2.0.0-rc.2"}, type="SEMVER"), None, True),
        ("npm", "2.0.0-rc.1", R({"introduced": "2.0.0-rc.2"}, type="SEMVER"), None, False),
        ("npm", "2.0.0-alpha", R({"introduced": "2.0.0-1"}, type="SEMVER"), None, True),
        ("go", "1.2.3", R({"introduced": "0"}, {"fixed": "1.2.4"}, type="SEMVER"), None, True),
        ("crates.io", "0.9.0", R({"introduced": "0.8.0"}, {"fixed": "0.9.1"}), None, True),
        # Debian: dpkg ordering, ~ before everything, epochs first
        ("debian", "3.0.11-1~deb12u1", R({"introduced": "0"}, {"fixed": "3.0.11-1"}), None, True),
        ("debian", "3.0.11-1", R({"introduced": "0"}, {"fixed": "3.0.11-1"}), None, False),
        ("debian", "1:1.0-1", R({"introduced": "0"}, {"fixed": "2.0-1"}), None, False),
        (
            "debian",
            "2.36-9+deb12u3",
            R({"introduced": "0"}, {"fixed": "2.36-9+deb12u4"}),
            None,
            True,
        ),
        # RubyGems: a letter segment is a pre-release; trailing zeros do not count
        ("rubygems", "2.0.0.rc1", R({"introduced": "0"}, {"fixed": "2.0.0"}), None, True),
        ("rubygems", "2.0", R({"introduced": "0"}, {"fixed": "2.0.0"}), None, False),
        ("rubygems", "1.10.2", R({"introduced": "1.9"}, {"fixed": "1.10.3"}), None, True),
        ("rubygems", "1.10.3.1", R({"introduced": "1.9"}, {"fixed": "1.10.3"}), None, False),
        # NuGet: four parts, pre-releases case-insensitive
        ("nuget", "12.0.1", R({"introduced": "0"}, {"fixed": "13.0.1"}), None, True),
        ("nuget", "13.0.1.0", R({"introduced": "0"}, {"fixed": "13.0.1"}), None, False),
        ("nuget", "13.0.1-Beta1", R({"introduced": "0"}, {"fixed": "13.0.1"}), None, True),
        # Alpine: apk's ordering, -rN releases, pre-release and patch suffixes
        ("alpine", "1.36.1-r2", R({"introduced": "0"}, {"fixed": "1.36.1-r3"}), None, True),
        ("alpine", "1.36.1-r3", R({"introduced": "0"}, {"fixed": "1.36.1-r3"}), None, False),
        ("alpine", "3.1.4_rc1-r0", R({"introduced": "0"}, {"fixed": "3.1.4-r0"}), None, True),
        ("alpine", "3.1.4_p1-r0", R({"introduced": "0"}, {"fixed": "3.1.4-r0"}), None, False),
        ("alpine", "1.2.10-r0", R({"introduced": "0"}, {"fixed": "1.2.9-r0"}), None, False),
        ("alpine", "1.2a-r0", R({"introduced": "0"}, {"fixed": "1.2b-r0"}), None, True),
        # ecosystems without an ordering here: the versions list only
        ("maven", "2.14.0", R({"introduced": "0"}, {"fixed": "2.15.0"}), None, False),
        ("maven", "2.14.0", R({"introduced": "0"}, {"fixed": "2.15.0"}), ["2.14.0"], True),
    ],
)
def test_other_ecosystems(ecosystem, version, ranges, versions, hit):
    assert affects(version, ecosystem, ranges, versions) is hit


# ---- records ---------------------------------------------------------------------------------


def test_record_severity_from_cvss_vectors_and_labels():
    r = osv.parse(
        json.dumps(record("GHSA-aaaa", "PyPI", "Vuln_Lib", events=[{"introduced": "0"}])).encode()
    )
    assert r.score == 9.8 and r.vector == CRITICAL_V3
    assert r.affected[0].name == "vuln-lib"  # PEP 503
    assert osv.parse(json.dumps(record("X-1", "npm", "a", vector=HIGH_V4)).encode()).score == 9.3
    labelled = osv.parse(json.dumps(record("X-2", "npm", "a", vector=None, label="HIGH")).encode())
    assert labelled.score is None and labelled.label == "HIGH"
    # A vector that does not parse gives no score, and the label stands.
    broken = record("X-3", "npm", "a", vector=None, label="moderate")
    broken["severity"] = [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:Q"}]
    parsed = osv.parse(json.dumps(broken).encode())
    assert parsed.score is None and parsed.label == "MODERATE"


@pytest.mark.parametrize(
    "doc",
    [
        b"not json",
        b"[]",
        json.dumps({"modified": "2026-01-01T00:00:00Z"}).encode(),  # no id
        json.dumps({"id": "X-1"}).encode(),  # no modified
        json.dumps({"id": "../../etc/passwd", "modified": "x"}).encode(),
        json.dumps(
            {
                "id": "X-1",
                "modified": "x",
                "affected": [
                    {
                        "package": {"ecosystem": "PyPI", "name": "a"},
                        "ranges": [{"type": "ECOSYSTEM", "events": [{"fixed": "1"}]}],
                    }
                ],
            }
        ).encode(),  # no introduced
        json.dumps(
            {
                "id": "X-1",
                "modified": "x",
                "affected": [
                    {
                        "package": {"ecosystem": "PyPI", "name": "a"},
                        "ranges": [
                            {"type": "ECOSYSTEM", "events": [{"introduced": "0", "fixed": "1"}]}
                        ],
                    }
                ],
            }
        ).encode(),  # two kinds in one event
        b"[" * 100_000,  # nesting
        b'{"id": "X-1", "modified": "x", "summary": "' + b"a" * (osv.MAX_RECORD) + b'"}',
    ],
)
def test_malformed_records_are_rejected(doc):
    with pytest.raises(osv.RecordRejected):
        osv.parse(doc)


def test_policy_thresholds_labels_unknowns_and_aliases():
    from types import SimpleNamespace

    from app.registry.vulnerabilities import policy
    from app.registry.vulnerabilities.reports import effective_score, severity_name

    def finding(ident, score=None, vector_score=None, label=None, aliases=()):
        advisory = SimpleNamespace(score=vector_score, label=label)
        s = score if score is not None else effective_score(advisory)
        return {
            "id": ident,
            "aliases": list(aliases),
            "score": s,
            "severity": severity_name(s),
            "package": {"name": "p", "version": "1"},
        }

    findings = [
        finding("CRIT", vector_score=9.8),
        finding("HIGH-LABEL", label="HIGH"),  # no vector: the band's lowest score, 7.0
        finding("MOD-LABEL", label="MODERATE"),
        finding("UNKNOWN"),
        finding("ALIASED", vector_score=8.1, aliases=["CVE-2026-1"]),
    ]
    assert [f["severity"] for f in findings] == ["critical", "high", "medium", "unknown", "high"]
    at = SimpleNamespace(block_at=policy.parse_threshold("high"), unknown="allow")
    assert [f["id"] for f in policy.blocking(at, findings, set())] == [
        "CRIT",
        "ALIASED",
        "HIGH-LABEL",
    ]
    at75 = SimpleNamespace(block_at=policy.parse_threshold(7.5), unknown="block")
    blocked = policy.blocking(at75, findings, {"CVE-2026-1"})  # accepted by its alias
    assert [f["id"] for f in blocked] == ["CRIT", "UNKNOWN"]
    message = policy.refusal(at75, blocked)
    assert "block at severity >= 7.5, unknown severity blocks" in message
    assert "CRIT (critical 9.8, p 1)" in message and "UNKNOWN (unknown severity, p 1)" in message
    many = [finding(f"A-{i}", vector_score=9.0) for i in range(8)]
    assert message_tail(policy.refusal(at, many)) == "and 3 more"
    for bad in (11, -0.5, "severe", True, [7]):
        with pytest.raises(Exception, match="block_at"):
            policy.parse_threshold(bad)


def message_tail(text: str) -> str:
    return text.rsplit(")", 1)[1].strip()


# ---- SBOMs -----------------------------------------------------------------------------------


def test_spdx_and_cyclonedx_purls():
    purls = [
        "pkg:pypi/Vuln_Lib@1.0",
        "pkg:npm/%40scope/left-pad@1.3.0",
        "pkg:golang/github.com/example/mod@v1.2.3",
        "pkg:maven/org.example/core@2.14.0",
        "pkg:cargo/smallvec@0.9.0",
        "pkg:gem/Rack@2.0.1",
        "pkg:nuget/Newtonsoft.Json@12.0.1",
        "pkg:deb/debian/libssl3@3.0.11-1~deb12u1?arch=amd64&upstream=openssl&distro=debian-12",
        "pkg:apk/alpine/busybox@1.36.1-r2?arch=x86_64",
        "pkg:generic/something@1.0",  # no OSV ecosystem
        "pkg:pypi/noversion",  # no version
        "not a purl",
    ]
    expected = {
        ("pypi", "vuln-lib", "1.0"),
        ("npm", "@scope/left-pad", "1.3.0"),
        ("go", "github.com/example/mod", "1.2.3"),
        ("maven", "org.example:core", "2.14.0"),
        ("crates.io", "smallvec", "0.9.0"),
        ("rubygems", "rack", "2.0.1"),
        ("nuget", "newtonsoft.json", "12.0.1"),
        ("debian", "openssl", "3.0.11-1~deb12u1"),
        ("alpine", "busybox", "1.36.1-r2"),
    }
    for body in (spdx(purls), cyclonedx(purls[:4], nested=purls[4:])):
        got = {(c.ecosystem, c.name, c.version) for c in sbom.components(body)}
        assert got == expected
    releases = {
        "pkg:deb/debian/libc6@2.36-9?distro=debian-12.5": "12",
        "pkg:deb/ubuntu/libc6@2.35-0ubuntu3?distro=ubuntu-22.04": "22.04",
        "pkg:apk/alpine/musl@1.2.4-r2?distro=alpine-3.19.1": "v3.19",
        "pkg:deb/debian/libc6@2.36-9": None,
    }
    for purl, release in releases.items():
        assert sbom.from_purl(purl).release == release


def test_distribution_releases():
    from app.registry.vulnerabilities.reports import same_release

    assert same_release("Debian:12", "12") and not same_release("Debian:11", "12")
    assert same_release("Debian", "12") and same_release("Debian:12", None)
    assert same_release("Ubuntu:22.04:LTS", "22.04") and not same_release(
        "Ubuntu:20.04:LTS", "22.04"
    )
    assert same_release("Alpine:v3.19", "v3.19") and not same_release("Alpine:v3.18", "v3.19")


@pytest.mark.parametrize(
    "body", [b"{}", b"[1]", b"nope", b'{"bomFormat": "Other"}', b"[" * 10_000 + b"]" * 10_000]
)
def test_not_an_sbom(body):
    with pytest.raises(sbom.NotAnSbom):
        sbom.components(body)


# ---- a server of its own: the database is global, the policies per registry ------------------

REG = "vulns"
API = "/api/v1/orgs/acme/registries/" + REG


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    with running_server(tmp_path_factory.mktemp("vulns")) as server:
        r = requests.post(
            f"{server.url}/api/v1/orgs/acme/registries",
            json={"name": REG},
            auth=("admin", server.users["admin"]),
            timeout=30,
        )
        assert r.status_code == 201, r.text
        yield server


def admin(srv):
    return ("admin", srv.users["admin"])


def flask(srv, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(BIN / "flask"), *args], env=srv.env, capture_output=True, text=True, check=False
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


RECORDS = [
    record(
        "PYSEC-2026-1",
        "PyPI",
        "Vuln_Lib",
        events=[{"introduced": "0"}, {"fixed": "1.1"}],
        summary="<script>alert('osv')</script> remote code execution",
    ),
    record(
        "GHSA-npm1-0000-0001",
        "npm",
        "left-pad",
        events=[{"introduced": "0"}, {"fixed": "1.3.1"}],
        range_type="SEMVER",
        vector=MEDIUM_V3,
    ),
    record(
        "GHSA-unkn-0000-0001",
        "PyPI",
        "mystery",
        versions=["2.0"],
        vector=None,
    ),
    record(
        "DSA-2026-1", "Debian:12", "openssl", events=[{"introduced": "0"}, {"fixed": "3.0.11-1"}]
    ),
]


@pytest.fixture(scope="module")
def database(srv, tmp_path_factory):
    folder = write_records(tmp_path_factory.mktemp("osv"), RECORDS)
    (folder / "PyPI" / "broken.json").write_text('{"id": "X"')
    out = flask(srv, "vulns", "import", str(folder))
    assert "4 advisories read, 4 added" in out.stdout, out.stdout
    assert "skipped 1" in out.stdout and "broken.json" in out.stderr
    return folder


def test_import_is_versioned_and_idempotent(srv, database, tmp_path):
    before = requests.get(f"{srv.url}/api/v1/vulnerabilities/database", timeout=30).json()
    assert before["loaded"] and before["advisories"] >= 4 and before["age_seconds"] >= 0
    assert "source" not in before  # a path on the server, for the operator's eyes only
    again = flask(srv, "vulns", "import", str(database))
    assert "nothing changed" in again.stdout
    after = requests.get(f"{srv.url}/api/v1/vulnerabilities/database", timeout=30).json()
    assert after["version"] == before["version"]

    # The same records in a zip: still nothing new. One changed record: a new version.
    archive = tmp_path / "osv.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in database.rglob("*.json"):
            zf.write(path, str(path.relative_to(database)))
    assert "nothing changed" in flask(srv, "vulns", "import", str(archive)).stdout
    changed = record(
        "GHSA-unkn-0000-0001",
        "PyPI",
        "mystery",
        versions=["2.0"],
        vector=None,
        modified="2026-02-01T00:00:00Z",
    )
    with zipfile.ZipFile(archive, "a") as zf:
        zf.writestr("PyPI/GHSA-unkn-0000-0001-v2.json", json.dumps(changed))
    out = flask(srv, "vulns", "import", str(archive)).stdout
    assert "1 updated" in out, out
    status = json.loads(flask(srv, "vulns", "status").stdout)
    assert status["version"] == before["version"] + 1 and status["source"] == str(archive)


def test_hostile_archives(srv, database, tmp_path):
    version = json.loads(flask(srv, "vulns", "status").stdout)["version"]
    # A member that expands a thousandfold, and one too large for a record: skipped, reported.
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.json", b" " * (osv.MAX_RECORD * 4))
        zf.writestr("big.json", b"{" + b'"a":1,' * (osv.MAX_RECORD // 6 + 10) + b'"b":1}')
        zf.writestr("fine.json", json.dumps(record("HOSTILE-1", "PyPI", "h", versions=["1"])))
    out = flask(srv, "vulns", "import", str(bomb))
    assert "skipped 2" in out.stdout, out.stdout
    assert "bomb.json" in out.stderr and "big.json" in out.stderr
    # Not a zip at all, a truncated one, a missing path: refused, nothing changed.
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    for path in (junk, tmp_path / "nothing-here"):
        proc = flask(srv, "vulns", "import", str(path), check=False)
        assert proc.returncode != 0
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(bomb.read_bytes()[:200])
    assert flask(srv, "vulns", "import", str(truncated), check=False).returncode != 0
    # A symlink out of the tree is not followed.
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "link.json").symlink_to("/etc/passwd")
    out = flask(srv, "vulns", "import", str(tree))
    assert "nothing changed" in out.stdout
    assert json.loads(flask(srv, "vulns", "status").stdout)["version"] == version + 1


# ---- images: reports through SBOM referrers, the pull policy ---------------------------------


def _push_with_sbom(c: OCIClient, repo: str, tag: str, body: bytes, kind: str, seed: bytes):
    digest, manifest = c.push_image(repo, tag, [seed])
    size = len(json.dumps(manifest).encode())
    sbom_digest = attach_sbom(c, repo, digest, size, body, kind)
    return digest, sbom_digest


def _policy(srv, block_at, unknown="allow"):
    r = requests.put(
        f"{srv.url}{API}/vulnerability-policy",
        json={"block_at": block_at, "unknown": unknown},
        auth=admin(srv),
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()


def _allow(srv, advisory: str, expires_at: str = "2999-12-31"):
    return requests.post(
        f"{srv.url}{API}/vulnerability-allowlist",
        json={"advisory": advisory, "expires_at": expires_at, "reason": "accepted risk"},
        auth=admin(srv),
        timeout=30,
    )


def _report(srv, repo_path: str, digest: str, auth) -> dict:
    r = requests.get(
        f"{srv.url}{API}/repositories/{repo_path}/manifests/{digest}/vulnerabilities",
        auth=auth,
        timeout=30,
    )
    assert r.status_code == 200, r.text
    return r.json()


def test_image_report_and_pull_policy(srv, database):
    c = OCIClient(srv.url, "alice", srv.users["alice"])
    repo = f"acme/{REG}/images/app"
    purls = ["pkg:pypi/vuln-lib@1.0", "pkg:npm/left-pad@1.3.0", "pkg:pypi/safe@1.0"]
    digest, sbom_digest = _push_with_sbom(c, repo, "v1", spdx(purls), SPDX_TYPE, b"layer one")
    report = _report(srv, "images/app", digest, ("victor", srv.users["victor"]))
    ids = {f["id"] for f in report["findings"]}
    assert ids == {"PYSEC-2026-1", "GHSA-npm1-0000-0001"}
    assert report["summary"]["critical"] == 1 and report["summary"]["medium"] == 1
    assert report["sboms"][0]["digest"] == sbom_digest
    assert report["blocked"] == []

    # An image without an SBOM has nothing to match; once one is attached, its report (cached
    # for this database version) is computed again.
    bare, bare_manifest = c.push_image(repo, "bare", [b"bare layer"])
    first = _report(srv, "images/app", bare, admin(srv))
    assert first["findings"] == [] and first["sboms"] == []
    size = len(json.dumps(bare_manifest).encode())
    attach_sbom(c, repo, bare, size, cyclonedx(["pkg:pypi/vuln-lib@1.0.0"]), CYCLONEDX_TYPE)
    assert [f["id"] for f in _report(srv, "images/app", bare, admin(srv))["findings"]] == [
        "PYSEC-2026-1"
    ]

    # CycloneDX, on another image: the medium npm finding only.
    other, _ = _push_with_sbom(
        c, repo, "v2", cyclonedx(["pkg:npm/left-pad@1.3.0"]), CYCLONEDX_TYPE, b"layer two"
    )
    assert {f["id"] for f in _report(srv, "images/app", other, admin(srv))["findings"]} == {
        "GHSA-npm1-0000-0001"
    }

    _policy(srv, "high")
    for ref in ("v1", digest):
        for method in ("GET", "HEAD"):
            r = c.request(method, f"/v2/{repo}/manifests/{ref}")
            assert r.status_code == 403, (method, ref, r.status_code)
        r = c.request("GET", f"/v2/{repo}/manifests/{ref}")
        error = r.json()["errors"][0]
        assert error["code"] == "DENIED"
        assert "PYSEC-2026-1" in error["message"] and "GHSA-npm1" not in error["message"]
    # Below the threshold: pullable. The SBOM itself and the referrers API stay reachable.
    assert c.request("GET", f"/v2/{repo}/manifests/v2").status_code == 200
    assert c.request("GET", f"/v2/{repo}/manifests/{sbom_digest}").status_code == 200
    listed = c.request("GET", f"/v2/{repo}/referrers/{digest}").json()["manifests"]
    assert [m["digest"] for m in listed] == [sbom_digest]
    assert _report(srv, "images/app", digest, admin(srv))["blocked"] == ["PYSEC-2026-1"]

    # A score threshold at 5: the medium (5.4) npm advisory blocks too.
    _policy(srv, 5)
    assert c.request("GET", f"/v2/{repo}/manifests/v2").status_code == 403

    # Accepted advisories no longer block.
    assert _allow(srv, "PYSEC-2026-1").status_code == 201
    assert _allow(srv, "GHSA-npm1-0000-0001").status_code == 201
    assert c.request("GET", f"/v2/{repo}/manifests/v1").status_code == 200
    # An entry that has expired blocks again.
    srv.sql(
        "UPDATE vuln_allowances SET expires_at = ? WHERE advisory_id = ?",
        "2000-01-01 00:00:00",
        "PYSEC-2026-1",
    )
    r = c.request("GET", f"/v2/{repo}/manifests/v1")
    assert r.status_code == 403 and "PYSEC-2026-1" in r.json()["errors"][0]["message"]
    listed = requests.get(f"{srv.url}{API}/vulnerability-allowlist", auth=admin(srv), timeout=30)
    assert {a["advisory"]: a["expired"] for a in listed.json()} == {
        "PYSEC-2026-1": True,
        "GHSA-npm1-0000-0001": False,
    }
    for advisory in ("PYSEC-2026-1", "GHSA-npm1-0000-0001"):
        r = requests.delete(
            f"{srv.url}{API}/vulnerability-allowlist/{advisory}", auth=admin(srv), timeout=30
        )
        assert r.status_code == 204
    _policy(srv, None)
    assert c.request("GET", f"/v2/{repo}/manifests/v1").status_code == 200


def test_index_is_judged_by_its_children(srv, database):
    c = OCIClient(srv.url, "alice", srv.users["alice"])
    repo = f"acme/{REG}/images/multi"
    child, _ = _push_with_sbom(
        c,
        repo,
        "amd64",
        spdx(
            [
                "pkg:deb/debian/libssl3@3.0.10-1?upstream=openssl&distro=debian-12",
                # Debian 11's package: the Debian:12 advisory is not about it.
                "pkg:deb/debian/libssl1.1@3.0.10-1?upstream=openssl&distro=debian-11",
            ]
        ),
        SPDX_TYPE,
        b"amd64 layer",
    )
    clean, _ = c.push_image(repo, "arm64", [b"arm64 layer"])
    sizes = {d: len(c.request("GET", f"/v2/{repo}/manifests/{d}").content) for d in (child, clean)}
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": s}
            for d, s in sizes.items()
        ],
    }
    r = c.push_manifest(repo, "latest", index)
    assert r.status_code == 201, r.text
    index_digest = r.headers["Docker-Content-Digest"]
    report = _report(srv, "images/multi", index_digest, admin(srv))
    assert report["kind"] == "index"
    assert [(f["id"], f["via"]) for f in report["findings"]] == [("DSA-2026-1", child)]
    _policy(srv, 9)
    try:
        assert c.request("GET", f"/v2/{repo}/manifests/latest").status_code == 403
        assert c.request("GET", f"/v2/{repo}/manifests/{child}").status_code == 403
        assert c.request("GET", f"/v2/{repo}/manifests/{clean}").status_code == 200
    finally:
        _policy(srv, None)


def test_unknown_severity(srv, database):
    c = OCIClient(srv.url, "alice", srv.users["alice"])
    repo = f"acme/{REG}/images/unknown"
    digest, _ = _push_with_sbom(
        c, repo, "v1", spdx(["pkg:pypi/mystery@2.0"]), SPDX_TYPE, b"mystery layer"
    )
    report = _report(srv, "images/unknown", digest, admin(srv))
    assert report["findings"][0]["severity"] == "unknown"
    _policy(srv, 0.1)
    assert c.request("GET", f"/v2/{repo}/manifests/v1").status_code == 200
    _policy(srv, 0.1, unknown="block")
    try:
        r = c.request("GET", f"/v2/{repo}/manifests/v1")
        assert r.status_code == 403 and "GHSA-unkn-0000-0001" in r.text
    finally:
        _policy(srv, None)


def test_bad_input(srv, database):
    url = f"{srv.url}{API}/vulnerability-policy"
    for body in (
        {},
        {"block_at": 11},
        {"block_at": -1},
        {"block_at": "severe"},
        {"block_at": True},
        {"block_at": 7, "unknown": "maybe"},
        {"block_at": 7, "unknown": 1},
    ):
        r = requests.put(url, json=body, auth=admin(srv), timeout=30)
        assert r.status_code == 400, (body, r.text)
        assert r.json()["errors"][0]["code"]
    r = requests.put(url, data=b"[", auth=admin(srv), timeout=30)
    assert r.status_code == 400
    allow = f"{srv.url}{API}/vulnerability-allowlist"
    for body in (
        {},
        {"advisory": "GHSA-x"},
        {"advisory": "GHSA-x", "expires_at": "tomorrow"},
        {"advisory": "GHSA-x", "expires_at": "2001-01-01"},
        {"advisory": "../x", "expires_at": "2999-01-01"},
        {"advisory": "GHSA-x", "expires_at": "2999-01-01", "reason": "r" * 2000},
        {"advisory": 5, "expires_at": "2999-01-01"},
    ):
        r = requests.post(allow, json=body, auth=admin(srv), timeout=30)
        assert r.status_code == 400, (body, r.text)
    r = requests.get(
        f"{srv.url}{API}/repositories/images/app/manifests/latest/vulnerabilities",
        auth=admin(srv),
        timeout=30,
    )
    assert r.status_code == 400
    # Writers may read reports but not set the policy.
    r = requests.put(url, json={"block_at": 7}, auth=("alice", srv.users["alice"]), timeout=30)
    assert r.status_code == 403


# ---- Python files: reports, and pip / uv refused with the advisory named ---------------------


@pytest.fixture(scope="module")
def vulnerable_wheel(srv, database, tmp_path_factory):
    folder = tmp_path_factory.mktemp("vuln-dists")
    index = f"{srv.url}/api/v1/acme/{REG}/python/"
    for version in ("1.0", "1.1"):
        wheel = dists.make_wheel(folder, "vuln-lib", version)
        r = dists.upload(index, wheel, "vuln-lib", version, ("alice", srv.users["alice"]))
        assert r.status_code == 200, r.text
    return index


def _index_url(srv) -> str:
    return f"http://alice:{srv.users['alice']}@{srv.host}/api/v1/acme/{REG}/python/simple/"


def test_python_file_reports(srv, vulnerable_wheel):
    r = requests.get(
        f"{srv.url}{API}/python/projects/Vuln_Lib/vulnerabilities",
        auth=("victor", srv.users["victor"]),
        timeout=30,
    )
    assert r.status_code == 200, r.text
    by_version = {f["version"]: [x["id"] for x in f["findings"]] for f in r.json()["files"]}
    assert by_version == {"1.0": ["PYSEC-2026-1"], "1.1": []}


def test_pip_and_uv_refused_then_allowed(srv, vulnerable_wheel, tmp_path):
    env = clean_env(tmp_path / "home")
    py = make_venv(tmp_path / "venv", env)
    pip = [str(py), "-m", "pip", "install", "--no-deps", "--force-reinstall", "--no-cache-dir"]
    uv = [
        str(BIN / "uv"),
        "pip",
        "install",
        "--python",
        str(py),
        "--no-deps",
        "--reinstall",
    ]
    _policy(srv, "critical")
    try:
        proc = run([*pip, "--index-url", _index_url(srv), "vuln-lib==1.0"], env, check=False)
        assert proc.returncode != 0
        pip_said = proc.stdout + proc.stderr
        assert "PYSEC-2026-1" in pip_said, pip_said
        proc = run([*uv, "--index-url", _index_url(srv), "vuln-lib==1.0"], env, check=False)
        assert proc.returncode != 0
        # Both print the status line's reason: the policy and the advisory, with its package.
        assert "403" in proc.stderr and "PYSEC-2026-1 (critical 9.8" in proc.stderr, proc.stderr
        assert "PYSEC-2026-1 (critical 9.8, vuln-lib 1.0)" in pip_said
        # The fixed release installs; the .metadata file of the vulnerable one is readable.
        run([*uv, "--index-url", _index_url(srv), "vuln-lib==1.1"], env)
        meta = requests.get(
            f"{srv.url}/api/v1/acme/{REG}/python/files/vuln-lib/vuln_lib-1.0-py3-none-any.whl.metadata",
            auth=("alice", srv.users["alice"]),
            timeout=30,
        )
        assert meta.status_code == 200
        direct = requests.get(
            f"{srv.url}/api/v1/acme/{REG}/python/files/vuln-lib/vuln_lib-1.0-py3-none-any.whl",
            auth=("alice", srv.users["alice"]),
            timeout=30,
        )
        assert direct.status_code == 403 and "PYSEC-2026-1" in direct.text
        assert "PYSEC-2026-1" in direct.reason

        assert _allow(srv, "PYSEC-2026-1").status_code == 201
        run([*pip, "--index-url", _index_url(srv), "vuln-lib==1.0"], env)
        run([*uv, "--index-url", _index_url(srv), "vuln-lib==1.0"], env)

        srv.sql(
            "UPDATE vuln_allowances SET expires_at = ? WHERE advisory_id = ?",
            "2000-01-01 00:00:00",
            "PYSEC-2026-1",
        )
        proc = run([*pip, "--index-url", _index_url(srv), "vuln-lib==1.0"], env, check=False)
        assert proc.returncode != 0 and "PYSEC-2026-1" in proc.stdout + proc.stderr
    finally:
        requests.delete(
            f"{srv.url}{API}/vulnerability-allowlist/PYSEC-2026-1", auth=admin(srv), timeout=30
        )
        _policy(srv, None)


# ---- the console -----------------------------------------------------------------------------


def test_console_pages_show_reports_escaped(srv, vulnerable_wheel):
    from tests.console.conftest import Console

    c = OCIClient(srv.url, "alice", srv.users["alice"])
    repo = f"acme/{REG}/images/console"
    digest, sbom_digest = _push_with_sbom(
        c, repo, "v1", spdx(["pkg:pypi/vuln-lib@1.0"]), SPDX_TYPE, b"console layer"
    )
    _policy(srv, 9)
    try:
        console = Console(srv.url)
        console.sign_in("victor", srv.users["victor"])
        page = console.get(f"/orgs/acme/{REG}/r/images/console/-/manifests/{digest}")
        assert page.status_code == 200, page.text[:500]
        html = page.text
        assert "PYSEC-2026-1" in html and "blocks pulls" in html
        assert "&lt;script&gt;alert(" in html and "<script>alert(" not in html
        # The SBOM's own page is not judged.
        sbom_page = console.get(f"/orgs/acme/{REG}/r/images/console/-/manifests/{sbom_digest}")
        assert sbom_page.status_code == 200 and "blocks pulls" not in sbom_page.text
        project = console.get(f"/orgs/acme/{REG}/python/vuln-lib?version=1.0")
        assert project.status_code == 200
        assert "PYSEC-2026-1" in project.text and "&lt;script&gt;" in project.text
        fixed = console.get(f"/orgs/acme/{REG}/python/vuln-lib?version=1.1")
        assert "No known vulnerabilities" in fixed.text
    finally:
        _policy(srv, None)


def test_hostile_sboms_are_reported_not_fatal(srv, database):
    c = OCIClient(srv.url, "alice", srv.users["alice"])
    repo = f"acme/{REG}/images/hostile"
    digest, manifest = c.push_image(repo, "v1", [b"hostile layer"])
    size = len(json.dumps(manifest).encode())
    for body in (
        b"[" * 5000 + b"]" * 5000,  # nested past the bound
        b'{"neither": "spdx nor cyclonedx"}',
        b"\xff\xfe not json",
        json.dumps({"bomFormat": "CycloneDX", "components": [{"purl": 5}, "x", None]}).encode(),
        json.dumps({"spdxVersion": "SPDX-2.3", "packages": [{"externalRefs": "x"}, 1]}).encode(),
    ):
        attach_sbom(c, repo, digest, size, body, SPDX_TYPE)
    report = _report(srv, "images/hostile", digest, admin(srv))
    assert report["findings"] == []
    assert len(report["sboms"]) == 5
    assert sum("error" in s for s in report["sboms"]) == 3, report["sboms"]
    _policy(srv, 0.1, unknown="block")
    try:
        assert c.request("GET", f"/v2/{repo}/manifests/v1").status_code == 200
    finally:
        _policy(srv, None)
