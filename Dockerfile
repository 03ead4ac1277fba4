# Cargohold: gunicorn serving wsgi:app, every setting from CARGOHOLD_* variables
# (docs/configuration.md, docs/operations.md). Build: `make image`, or
#   podman build -t cargohold .
# BASE_IMAGE is any Debian-like image with python3 (3.11+) (and its venv module, unless
# BUILD_IMAGE names another image of the same system for the build stage): the official
# slim image by default; `make image` uses a local one made from Debian packages where no
# container registry can be reached (scripts/base-image.sh).
# Size on that base: 241 MB once sigstore-python came in for PEP 740 verification, 199.99 MB
# with the cuts below and in scripts/base-image.sh (docs/operations.md lists them; each is
# proved safe inside the built image by tests/test_image.py, running tests/image_check.py).
ARG BASE_IMAGE=docker.io/library/python:3.12-slim
# The build stage's image: the same system as BASE_IMAGE (the venv is copied across), with
# binutils where it has them (scripts/base-image.sh makes such a twin) to strip the wheels'
# extension modules.
ARG BUILD_IMAGE=${BASE_IMAGE}

# ---- build: wheels only, never a compiler -------------------------------------------------------
FROM ${BUILD_IMAGE} AS build
# Optional, for builds behind a package mirror or a TLS-inspecting proxy (a CA bundle's path
# inside the build, mounted with `podman build -v`).
ARG PIP_INDEX_URL
ARG PIP_CERT
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_ROOT_USER_ACTION=ignore
RUN python3 -m venv /opt/build-tools
WORKDIR /src
COPY pyproject.toml ./
# The dependencies as binary wheels (--only-binary: a missing wheel fails the build rather
# than compiling), then installed into a venv without pip, which is all the runtime gets.
RUN python3 -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" >requirements.txt \
 && /opt/build-tools/bin/pip wheel --only-binary=:all: --wheel-dir /wheels -r requirements.txt \
 && python3 -m venv --without-pip /opt/venv \
 && /opt/build-tools/bin/pip --python /opt/venv/bin/python install --no-index --find-links /wheels -r requirements.txt
# botocore ships the API models of every AWS service (~30 MB); keep the ones Cargohold calls:
# S3 for blobs, SQS and Cognito for sign-ups, STS/SSO for the credential chain.
ARG BOTOCORE_SERVICES="s3 sqs cognito-idp sts sso sso-oidc"
RUN cd /opt/venv/lib/python3*/site-packages/botocore/data \
 && for d in */; do case " $BOTOCORE_SERVICES " in *" ${d%/} "*) ;; *) rm -rf "$d" ;; esac; done
# What no runtime path imports (tests/image_check.py imports every application module,
# verifies real PEP 740 attestations, renders Markdown and reStructuredText with highlighting,
# hashes a password, and fails if any of these is loaded):
# - rich, markdown-it-py, mdurl: sigstore's command line only (sigstore._cli); the verifier
#   the registry calls never imports them;
# - email-validator, dnspython: pydantic's EmailStr only, which no model we load declares;
#   psycopg's SRV lookups (psycopg._dns), which Cargohold does not use;
# - pycparser: cffi's C-declaration parser, needed only to build cffi modules; argon2's
#   bindings ship compiled.
# Uninstalled with pip so their metadata and console scripts go too.
ARG UNUSED_DISTRIBUTIONS="rich markdown-it-py mdurl email-validator dnspython pycparser"
RUN /opt/build-tools/bin/pip --python /opt/venv/bin/python uninstall -q -y $UNUSED_DISTRIBUTIONS
# docutils' writers other than HTML (readme_renderer renders with html5_polyglot), loaded only
# by name; type stubs, read by type checkers only; SQLAlchemy's MySQL, SQL Server and Oracle
# dialects (Cargohold runs on SQLite or PostgreSQL, and none of their drivers is installed);
# boto3's resource models of services whose botocore models are gone above; Pygments' styles
# other than the default, the only one readme_renderer's HtmlFormatter loads (it emits CSS
# classes; a description cannot choose a style); the docutils and Pygments scripts.
RUN cd /opt/venv/lib/python3*/site-packages \
 && rm -rf docutils/writers/latex2e docutils/writers/xetex docutils/writers/odf_odt \
    docutils/writers/s5_html docutils/writers/pep_html docutils/writers/manpage.py \
    docutils/writers/__pycache__/manpage.* \
 && find . -name '*.pyi' -delete \
 && rm -rf sqlalchemy/dialects/mysql sqlalchemy/dialects/mssql sqlalchemy/dialects/oracle \
 && find boto3/data -mindepth 1 -maxdepth 1 -type d -not -name s3 -not -name sqs -exec rm -rf {} + \
 && find pygments/styles -name '*.py*' -not -name '__init__.*' -not -name '_mapping.*' \
    -not -name 'default.*' -delete \
 && rm -f /opt/venv/bin/rst2* /opt/venv/bin/docutils /opt/venv/bin/pygmentize
# Extension modules shipped with their symbol tables and debugging sections (SQLAlchemy's
# Cython modules, the Rust ones of cryptography, rfc3161-client, nh3, comrak: about 13 MB).
# `strip --strip-unneeded` keeps what the dynamic loader needs, as Debian strips its own
# libraries. Not the libraries auditwheel vendored (*.libs, already stripped and patched by
# patchelf, which strip can break). Skipped where the build image has no binutils.
RUN if command -v strip >/dev/null; then \
      find /opt/venv -name '*.so' -type f -not -path '*.libs/*' -exec strip --strip-unneeded {} +; \
    fi

# ---- runtime ----------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FLASK_APP=wsgi \
    CARGOHOLD_HOST=0.0.0.0 \
    CARGOHOLD_PORT=5000 \
    CARGOHOLD_DATA_DIR=/var/lib/cargohold
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/cargohold --shell /usr/sbin/nologin cargohold \
 && mkdir -p /var/lib/cargohold \
 && chown cargohold:cargohold /var/lib/cargohold
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv/cargohold
# What .dockerignore lets through: the application, its migrations, the WSGI and gunicorn
# entry points, the worker, the entrypoint script. Compiled once here: the user cannot write it.
COPY . ./
RUN python3 -m compileall -q . \
 && install -m 0755 scripts/container-entrypoint.sh /usr/local/bin/cargohold-entrypoint
USER 10001:10001
EXPOSE 5000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CARGOHOLD_PORT', '5000'), timeout=4)"]
ENTRYPOINT ["cargohold-entrypoint"]
# `serve`: migrations (one replica at a time) then gunicorn. Any other command runs as given,
# e.g. `python -m worker`.
CMD ["serve"]
