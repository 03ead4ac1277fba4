"""The OCI distribution-spec conformance suite, all four workflows, against a real server."""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.conftest import require_tool

pytestmark = pytest.mark.conformance
ROOT = Path(__file__).resolve().parents[1]
REPORT_DIR = ROOT / "build" / "conformance"


def failed_specs(junit: Path) -> tuple[int, list[str]]:
    tree = ET.parse(junit)
    cases = list(tree.iter("testcase"))
    failed = [
        case.get("name", "?")
        for case in cases
        if case.find("failure") is not None or case.find("error") is not None
    ]
    return len(cases), failed


def test_conformance_suite(server):
    binary = require_tool("conformance.test")
    REPORT_DIR.mkdir(parents=True, exist_ok=True)
    for stale in ("junit.xml", "report.html"):
        (REPORT_DIR / stale).unlink(missing_ok=True)
    env = {
        **os.environ,
        "OCI_ROOT_URL": server.url,
        "OCI_NAMESPACE": "acme/main/conformance",
        "OCI_CROSSMOUNT_NAMESPACE": "acme/second/conformance",
        "OCI_USERNAME": "alice",
        "OCI_PASSWORD": server.users["alice"],
        "OCI_TEST_PULL": "1",
        "OCI_TEST_PUSH": "1",
        "OCI_TEST_CONTENT_DISCOVERY": "1",
        "OCI_TEST_CONTENT_MANAGEMENT": "1",
        "OCI_HIDE_SKIPPED_WORKFLOWS": "0",
        "OCI_DEBUG": "0",
        "OCI_REPORT_DIR": str(REPORT_DIR),
    }
    proc = subprocess.run(
        [binary], cwd=REPORT_DIR, env=env, capture_output=True, text=True, timeout=900
    )
    (REPORT_DIR / "output.txt").write_text(proc.stdout + proc.stderr)
    junit = REPORT_DIR / "junit.xml"
    assert junit.exists(), f"no junit.xml; output:\n{(proc.stdout + proc.stderr)[-3000:]}"
    total, failed = failed_specs(junit)
    assert total > 0, "the conformance suite ran no spec"
    assert not failed, f"{len(failed)} of {total} specs failed:\n" + "\n".join(failed)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
