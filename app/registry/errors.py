"""Registry errors: core errors that carry the OCI distribution-spec error code, since the
registry core speaks that vocabulary. Other blueprints render them by their status."""

from __future__ import annotations

from app.errors import CoreError

STATUS = {
    "BLOB_UNKNOWN": 404,
    "BLOB_UPLOAD_INVALID": 400,
    "BLOB_UPLOAD_UNKNOWN": 404,
    "DIGEST_INVALID": 400,
    "MANIFEST_BLOB_UNKNOWN": 400,
    "MANIFEST_INVALID": 400,
    "MANIFEST_UNKNOWN": 404,
    "NAME_INVALID": 400,
    "NAME_UNKNOWN": 404,
    "PAGINATION_NUMBER_INVALID": 400,
    "SIZE_INVALID": 400,
    "UNAUTHORIZED": 401,
    "DENIED": 403,
    "UNSUPPORTED": 405,
    "TOOMANYREQUESTS": 429,
    # Not in the OCI spec's table; Distribution answers the same code when a backend is down.
    "UNAVAILABLE": 503,
}

MESSAGES = {
    "BLOB_UNKNOWN": "blob unknown to registry",
    "BLOB_UPLOAD_INVALID": "blob upload invalid",
    "BLOB_UPLOAD_UNKNOWN": "blob upload unknown to registry",
    "DIGEST_INVALID": "provided digest did not match uploaded content",
    "MANIFEST_BLOB_UNKNOWN": "manifest references a manifest or blob unknown to registry",
    "MANIFEST_INVALID": "manifest invalid",
    "MANIFEST_UNKNOWN": "manifest unknown to registry",
    "NAME_INVALID": "invalid repository name",
    "NAME_UNKNOWN": "repository name not known to registry",
    # Distribution's code for an unusable `n`; not in the OCI spec's table.
    "PAGINATION_NUMBER_INVALID": "invalid number of results requested",
    "SIZE_INVALID": "provided length did not match content length",
    "UNAUTHORIZED": "authentication required",
    "DENIED": "requested access to the resource is denied",
    "UNSUPPORTED": "the operation is unsupported",
    "TOOMANYREQUESTS": "too many requests",
    "UNAVAILABLE": "service unavailable; retry later",
}


class RegistryError(CoreError):
    def __init__(
        self,
        code: str,
        detail: str | dict | None = None,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
        message: str | None = None,
    ):
        text = detail if isinstance(detail, str) else code.replace("_", " ").lower()
        super().__init__(text, headers=headers)
        self.code = code
        self.detail = detail
        self.status = status or STATUS[code]
        # Clients print the message alone (podman, skopeo): a refusal the caller must act on
        # may put its reason there instead of the code's stock sentence.
        self.body_message = message or MESSAGES[code]

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"

    def body(self) -> dict:
        err: dict = {"code": self.code, "message": self.body_message}
        if self.detail is not None:
            err["detail"] = self.detail
        return {"errors": [err]}
