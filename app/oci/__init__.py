"""The OCI Distribution v1.1 blueprint: HTTP in, calls on app.registry, HTTP out."""
