"""The OCI distribution-spec conformance suite (v1.1 profile) against a real server."""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import require_tool

pytestmark = pytest.mark.conformance
ROOT = Path(__file__).resolve().parents[1]
# One report per backend: make test runs the suite on each.
REPORT_DIR = ROOT / "build" / "conformance" / os.environ.get("CARGOHOLD_TEST_BACKEND", "sqlite")


def junit_summary(junit: Path) -> tuple[int, list[str]]:
    root = ET.parse(junit).getroot()
    total = int(root.get("tests", "0"))
    failed = [
        case.get("name", "?")
        for case in root.iter("testcase")
        if case.find("failure") is not None or case.find("error") is not None
    ]
    return total, failed


def test_conformance_suite(server):
    binary = require_tool("conformance.test")
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    for stale in ("junit.xml", "report.html", "results.yaml"):
        (REPORT_DIR / stale).unlink(missing_ok=True)
    env = {
        **os.environ,
        "OCI_REGISTRY": server.host,
        "OCI_TLS": "disabled",
        "OCI_VERSION": "1.1",
        # Two registries of one organisation, so cross-repository mounts cross registries.
        "OCI_REPO1": "acme/main/conformance",
        "OCI_REPO2": "acme/second/conformance",
        "OCI_USERNAME": "alice",
        "OCI_PASSWORD": server.users["alice"],
        "OCI_RESULTS_DIR": str(REPORT_DIR),
        # Optional features Cargohold implements, switched on so they are checked too.
        "OCI_API_BLOBS_UPLOAD_CANCEL": "true",
        "OCI_API_MANIFESTS_DIGEST_HEADER": "true",
        "OCI_API_MANIFESTS_TAG_PARAM": "true",
    }
    if os.environ.get("CARGOHOLD_TEST_BACKEND", "sqlite") == "sqlite":
        # On S3 a blob GET is a redirect, and the object store's answer cannot carry the header.
        env["OCI_API_BLOBS_DIGEST_HEADER"] = "true"
    proc = subprocess.run(
        [binary], cwd=REPORT_DIR, env=env, capture_output=True, text=True, timeout=900
    )
    output = proc.stdout + proc.stderr
    (REPORT_DIR / "output.txt").write_text(output)
    junit = REPORT_DIR / "junit.xml"
    assert junit.exists(), f"no junit.xml; output:\n{output[-3000:]}"
    assert (REPORT_DIR / "report.html").exists()
    total, failed = junit_summary(junit)
    assert total > 800, f"the conformance suite ran only {total} checks"
    assert not failed, f"{len(failed)} of {total} checks failed:\n" + "\n".join(failed[:50])
    assert proc.returncode == 0, output[-3000:]
    assert "OCI Conformance Result: Pass" in output
