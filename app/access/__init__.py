"""Who may do what. One decision function for every route of every blueprint."""

from app.access.policy import (
    ACCOUNT_MANAGE,
    ACCOUNT_READ,
    ACTIONS,
    ORG_ADMIN,
    ORG_CREATE,
    ORG_READ,
    SITE,
    SITE_ADMIN,
    OrgResource,
    Principal,
    RegistryResource,
    allowed,
    authorize,
    granted_actions,
)

__all__ = [
    "ACCOUNT_MANAGE",
    "ACCOUNT_READ",
    "ACTIONS",
    "ORG_ADMIN",
    "ORG_CREATE",
    "ORG_READ",
    "SITE",
    "SITE_ADMIN",
    "OrgResource",
    "Principal",
    "RegistryResource",
    "allowed",
    "authorize",
    "granted_actions",
]
