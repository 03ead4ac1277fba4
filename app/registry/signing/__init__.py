"""Signatures on manifests: the keys a registry trusts (keys.py), the three signature forms
(cosign.py: cosign's `sha256-<hex>.sig` tag scheme; bundle.py: sigstore bundles attached as
referrers; notary.py: Notary Project JWS envelopes), verification with its cache (verify.py) and
the per-registry pull policy (policy.py)."""
