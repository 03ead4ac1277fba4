"""Operations: liveness and readiness probes, Prometheus metrics, request ids, access logs and
the trusted-proxy setting (`probes.init_app` wires them into the app).

Kept empty of imports: `app.ops.metrics` is used by the request's credentials, which the gate
imports, and the probes' routes are declared through the gate."""
