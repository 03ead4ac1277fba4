"""Every /api/v1 management route, one module an area; importing this registers them all."""

from app.api import account, lifecycle, orgs, robots  # noqa: F401 - each registers its routes
