"""Run inside the built image by tests/test_image.py (`python3 - ASSETS < tests/image_check.py`,
the PEP 740 test assets mounted at ASSETS): proves that what the Dockerfile cuts from the runtime
was not needed. Every module of the application is imported, real attestations are verified
offline with sigstore's shipped trusted root (and a wrong digest refused, so the verification
really ran), Markdown and reStructuredText descriptions with code blocks are rendered with
their highlighting, and a password is hashed. Prints one JSON line: the modules loaded, for the
test to check."""

from __future__ import annotations

import hashlib
import importlib
import json
import pkgutil
import sys
from pathlib import Path

SIGNED = {
    "pypi_attestations-0.0.19.tar.gz": "trailofbits/pypi-attestations",
    "gitlab_oidc_project-0.0.3.tar.gz": "facutuesca/gitlab-oidc-project",
}
MARKDOWN = """# Title

| a | b |
|---|---|
| 1 | 2 |

```python
import os
print(os.sep)
```

~~struck~~ and a task list:

- [x] done
"""
RST = """Title
=====

.. code-block:: python

    import os
    print(os.sep)

.. code:: bash

    echo hello
"""


def import_everything() -> int:
    import app
    import worker

    count = 0
    for package in (app, worker):
        for found in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if not found.name.endswith(".__main__"):
                importlib.import_module(found.name)
                count += 1
    return count


def verify_attestations(assets: Path) -> None:
    from app.pypi import attestations
    from app.pypi.errors import PyPIError

    for sdist, repository in SIGNED.items():
        raw = f"[{(assets / f'{sdist}.publish.attestation').read_text()}]"
        digest = hashlib.sha256((assets / sdist).read_bytes()).hexdigest()
        verified, source = attestations.verify(raw, sdist, digest, None)
        assert verified.publisher["repository"] == repository, verified.publisher
        assert source == attestations.FROM_CERTIFICATE, source
        try:
            attestations.verify(raw, sdist, "0" * 64, None)
        except PyPIError as exc:
            assert exc.status == 400, exc
        else:
            raise AssertionError(f"{sdist}: an attestation for another digest was accepted")


def render_descriptions() -> None:
    from app.console.views_python import render_description

    md = render_description(MARKDOWN, "text/markdown; variant=GFM")
    assert md and "<table>" in md and "<del>struck</del>" in md, md
    # Pygments' Python lexer ran: keywords and names carry its token classes.
    assert '<span class="kn">import</span>' in md, md
    rst = render_description(RST, "text/x-rst")
    assert rst and '<span class="kn">import</span>' in rst, rst
    assert '<pre class="code bash literal-block">' in rst, rst


def hash_password() -> None:
    # argon2's cffi bindings come compiled: no C parser needed to load them.
    from argon2 import PasswordHasher

    hasher = PasswordHasher()
    assert hasher.verify(hasher.hash("correct horse"), "correct horse")


def main() -> None:
    modules = import_everything()
    verify_attestations(Path(sys.argv[1]))
    render_descriptions()
    hash_password()
    loaded = sorted(sys.modules)
    print(json.dumps({"app_modules": modules, "loaded": loaded}))


if __name__ == "__main__":
    main()
