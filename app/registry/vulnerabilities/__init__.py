"""Vulnerabilities, offline: an OSV database imported from files, matched against Python files
and against the packages SBOM referrers name, and a per-registry pull policy."""
