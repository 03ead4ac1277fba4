"""The JSON management API under /api/v1, used by scripts and the admin pages."""
