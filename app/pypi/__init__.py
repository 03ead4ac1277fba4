"""Python packages: twine/uv upload and the pip/uv Simple API, each file an OCI artifact.

routes.py translates HTTP; store.py holds the rules (validation, storage, yanking, deletion);
distributions.py reads archives safely; simple.py renders the index pages; names.py owns the
project-name rules and the reserved OCI namespace. See docs/python-packages.md.
"""
