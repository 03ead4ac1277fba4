"""The token service (Docker token specification) and request authentication."""
