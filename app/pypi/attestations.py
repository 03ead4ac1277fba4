"""PEP 740 attestations sent with an upload (twine `upload --attestations`): bounded, parsed,
and verified against the uploaded file before anything is stored.

Verification is offline: the Sigstore trusted root is the one shipped inside sigstore-python,
read once per process, never refreshed from the network and never taken from a TUF cache in
someone's home directory. An attestation must verify against that root (certificate chain,
transparency-log inclusion proof, DSSE signature), name exactly this file (its filename and
sha256) and carry a predicate type PyPI knows.

Who must have signed it:
- an upload made through a CI trust policy (a robot logged in with an OIDC ID token): the
  publisher is that workload, its repository and workflow taken from the token's claims
  (GitHub Actions: `repository`, `workflow_ref`; GitLab CI: `project_path`,
  `ci_config_ref_uri`), and every attestation must have been signed by exactly that workflow;
- an upload by a person or an access token: the publisher is read from the attestation's own
  certificate, and must be a GitHub Actions or GitLab CI workflow (the identities PyPI's
  Trusted Publishing attests); every attestation of the upload must name the same one. The
  registry then vouches that the signature is genuine and names this file, not that the
  uploader is that workflow, and the API says which of the two cases applies.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    parse_sdist_filename,
    parse_wheel_filename,
)
from pydantic import ValidationError
from pypi_attestations import (
    Attestation,
    AttestationType,
    GitHubPublisher,
    GitLabPublisher,
)
from sigstore.errors import Error as SigstoreError
from sigstore.models import TrustedRoot
from sigstore.verify import Verifier

from app import limits
from app.access.workload import ISSUER
from app.pypi.errors import bad_request

FIELD = "attestations"
MAX_FIELD_BYTES = 256 * 1024  # one attestation is 5 to 10 KiB
MAX_ATTESTATIONS = 4
MAX_DEPTH = 16
GITHUB_ISSUER = "https://token.actions.githubusercontent.com"
GITLAB_ISSUER = "https://gitlab.com"
# Fulcio certificate extensions (https://github.com/sigstore/fulcio/blob/main/docs/oid-info.md).
OID_ISSUER = "1.3.6.1.4.1.57264.1.8"
OID_SOURCE_REPOSITORY = "1.3.6.1.4.1.57264.1.12"
OID_BUILD_CONFIG = "1.3.6.1.4.1.57264.1.18"
TRUSTED_ROOT = "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev/trusted_root.json"
# How the publisher was established, as the API reports it.
FROM_WORKLOAD = "upload-identity"
FROM_CERTIFICATE = "certificate"

Publisher = GitHubPublisher | GitLabPublisher


@dataclass(frozen=True)
class Verified:
    """What an upload's attestations proved: the provenance object to store and serve."""

    publisher: dict
    attestations: list[dict]
    predicate_types: list[str]

    def provenance(self) -> dict:
        """The PEP 740 provenance object: one bundle, this upload's."""
        return {
            "version": 1,
            "attestation_bundles": [
                {"publisher": self.publisher, "attestations": self.attestations}
            ],
        }


@functools.cache
def _verifier() -> Verifier:
    root = resources.files("sigstore._store").joinpath(TRUSTED_ROOT)
    return Verifier(trusted_root=TrustedRoot.from_file(str(root)))


def _invalid(why: str):
    return bad_request(f"Invalid attestations supplied during upload: {why}")


def _unverified(why: str):
    return bad_request(
        f"Could not verify the uploaded artifact using the included attestation: {why}"
    )


def parse(raw: str) -> list[tuple[dict, Attestation]]:
    """The field's attestations, each as sent and as a model; bounded before it is parsed."""
    if len(raw.encode()) > MAX_FIELD_BYTES:
        raise _invalid(f"the field is larger than {MAX_FIELD_BYTES // 1024} KiB")
    try:
        found = limits.loads(raw, max_depth=MAX_DEPTH)
    except limits.InputRejected as exc:
        raise _invalid(str(exc)) from None
    if not isinstance(found, list) or not found:
        raise _invalid("expected a non-empty JSON array of attestation objects")
    if len(found) > MAX_ATTESTATIONS:
        raise _invalid(f"at most {MAX_ATTESTATIONS} attestations are accepted per file")
    out = []
    for item in found:
        if not isinstance(item, dict):
            raise _invalid("every attestation must be a JSON object")
        try:
            out.append((item, Attestation.model_validate(item)))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise _invalid(f"{where or 'attestation'}: {first.get('msg')}") from None
    return out


def _workflow_file(build_config: str, marker: str) -> str:
    """`release.yml` from `.../owner/repo/.github/workflows/release.yml@refs/tags/v1`."""
    path = build_config.rsplit("@", 1)[0].removeprefix("https://")
    _, sep, rest = path.partition(marker)
    return rest if sep else ""


def publisher_from_workload(workload: dict[str, str]) -> Publisher:
    environment = workload.get("environment") or None
    if workload.get("repository") and workload.get("workflow_ref"):
        workflow = _workflow_file(workload["workflow_ref"], "/.github/workflows/")
        if workflow:
            return GitHubPublisher(
                repository=workload["repository"], workflow=workflow, environment=environment
            )
    if workload.get("project_path") and workload.get("ci_config_ref_uri"):
        workflow = _workflow_file(workload["ci_config_ref_uri"], "//")
        if workflow:
            return GitLabPublisher(
                repository=workload["project_path"],
                workflow_filepath=workflow,
                environment=environment,
            )
    raise _unverified(
        "attestations of an upload through a CI trust policy must be signed by its workload, "
        f"and the ID token of issuer {workload.get(ISSUER)!r} names no GitHub Actions or "
        "GitLab CI workflow"
    )


def publisher_from_certificate(attestation: Attestation) -> Publisher:
    try:
        claims = attestation.certificate_claims
    except ValueError:
        raise _unverified("the signing certificate cannot be read") from None
    issuer = claims.get(OID_ISSUER, "")
    source = claims.get(OID_SOURCE_REPOSITORY, "")
    build_config = claims.get(OID_BUILD_CONFIG, "")
    if issuer == GITHUB_ISSUER and source.startswith("https://github.com/"):
        workflow = _workflow_file(build_config, "/.github/workflows/")
        if workflow:
            return GitHubPublisher(
                repository=source.removeprefix("https://github.com/"), workflow=workflow
            )
    if issuer == GITLAB_ISSUER and source.startswith("https://gitlab.com/"):
        workflow = _workflow_file(build_config, "//")
        if workflow:
            return GitLabPublisher(
                repository=source.removeprefix("https://gitlab.com/"), workflow_filepath=workflow
            )
    raise _unverified(
        f"the signing identity (issuer {issuer!r}) is not a GitHub Actions or GitLab CI "
        "workflow, the publishers this registry accepts"
    )


def _same_file(subject_name: str, filename: str) -> bool:
    """Compared as parsed names, as pypi-attestations does: `Foo_Bar-1.0.tar.gz` is the
    subject `foo_bar-1.0.tar.gz` names."""
    try:
        if filename.endswith(".whl"):
            return parse_wheel_filename(subject_name) == parse_wheel_filename(filename)
        return parse_sdist_filename(subject_name) == parse_sdist_filename(filename)
    except (InvalidWheelFilename, InvalidSdistFilename):
        return False


def _check_statement(payload: bytes, filename: str, sha256: str) -> str:
    """The predicate type of a verified statement about exactly this file."""
    try:
        statement = json.loads(payload)
        subjects = statement["subject"]
        predicate_type = statement["predicateType"]
    except (ValueError, KeyError, TypeError):
        raise _unverified("the signed statement is not an in-toto statement") from None
    if not isinstance(subjects, list) or len(subjects) != 1 or not isinstance(subjects[0], dict):
        raise _unverified("the statement must name exactly one subject")
    subject = subjects[0]
    if not _same_file(str(subject.get("name", "")), filename):
        raise _unverified(
            f"subject does not match distribution name: {subject.get('name')!r} != {filename!r}"
        )
    digest = subject.get("digest")
    if not isinstance(digest, dict) or digest.get("sha256") != sha256:
        raise _unverified("subject does not match distribution digest")
    try:
        AttestationType(predicate_type)
    except ValueError:
        raise _unverified(f"unknown attestation type: {predicate_type!r}") from None
    return str(predicate_type)


def describe(publisher: dict) -> str:
    """One line naming a publisher: `GitHub trailofbits/pypi-attestations release.yml`."""
    workflow = publisher.get("workflow") or publisher.get("workflow_filepath") or ""
    parts = [publisher.get("kind"), publisher.get("repository"), workflow]
    return " ".join(str(p) for p in parts if p)


def _verify_one(attestation: Attestation, publisher: Publisher, filename: str, sha256: str):
    try:
        bundle = attestation.to_bundle()
        # The publisher's own policy: issuer, source repository and workflow file all checked.
        media_type, payload = _verifier().verify_dsse(bundle, publisher._as_policy())  # noqa: SLF001
    except (SigstoreError, ValueError) as exc:
        why = str(exc) or type(exc).__name__
        if "Trusted Publisher" in why or "OIDC" in why:
            # The policy's own text dumps a whole certificate extension; name the identity.
            why = f"it was not signed by the publisher {describe(publisher.model_dump())}"
        raise _unverified(why) from None
    if media_type != "application/vnd.in-toto+json":
        raise _unverified(f"expected an in-toto statement, got {media_type}")
    return _check_statement(payload, filename, sha256)


def verify(
    raw: str, filename: str, sha256: str, workload: dict[str, str] | None
) -> tuple[Verified, str]:
    """Every attestation verified against the file; the provenance and how its publisher was
    established. Raises the PyPI 400 refusal naming what failed."""
    parsed = parse(raw)
    if workload:
        publisher, source = publisher_from_workload(workload), FROM_WORKLOAD
    else:
        publisher, source = publisher_from_certificate(parsed[0][1]), FROM_CERTIFICATE
        for _, other in parsed[1:]:
            if publisher_from_certificate(other) != publisher:
                raise _unverified("the attestations of one file name different publishers")
    types = [_verify_one(model, publisher, filename, sha256) for _, model in parsed]
    if len(set(types)) != len(types):
        raise _invalid("at most one attestation of each predicate type is accepted")
    document = publisher.model_dump(mode="json")
    return Verified(document, [item for item, _ in parsed], types), source
