#!/usr/bin/env bash
# Build the container image with podman: `make image`. Layers are cached, so a rebuild after a
# code change redoes only the last steps.
#
#   CARGOHOLD_IMAGE       tag to build (default localhost/cargohold:dev)
#   CARGOHOLD_BASE_IMAGE  base image; by default the official python slim image when it can be
#                         pulled, otherwise a local one made from Debian packages
#   CARGOHOLD_BUILD_IMAGE the build stage's image (default: the base's `-build` twin made by
#                         scripts/base-image.sh, else the base itself)
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE="${CARGOHOLD_IMAGE:-localhost/cargohold:dev}"
OFFICIAL=docker.io/library/python:3.12-slim
log() { printf '[image] %s\n' "$*" >&2; }

if ! command -v podman >/dev/null; then
  scripts/install-tools.sh >&2
fi

base="${CARGOHOLD_BASE_IMAGE:-}"
if [ -z "$base" ]; then
  if podman image exists "$OFFICIAL" || timeout 60 podman pull -q "$OFFICIAL" >/dev/null 2>&1; then
    base="$OFFICIAL"
  else
    log "$OFFICIAL cannot be pulled here; using a base made from Debian packages"
    base="$(scripts/base-image.sh)"
  fi
fi
# The build stage runs on the same system with binutils where one was made beside the base.
build="${CARGOHOLD_BUILD_IMAGE:-$base}"
if [ -z "${CARGOHOLD_BUILD_IMAGE:-}" ] && podman image exists "$base-build"; then
  build="$base-build"
fi

args=(--format docker --layers --network host --build-arg "BASE_IMAGE=$base" -t "$IMAGE")
args+=(--build-arg "BUILD_IMAGE=$build")
# RUN steps without an OCI runtime: works where the runtime cannot manage cgroups or limits.
args+=(--isolation chroot)
# pip inside the build trusts what pip here trusts (a mirror, or a proxy's CA).
if [ -n "${PIP_INDEX_URL:-}" ]; then
  args+=(--build-arg "PIP_INDEX_URL=$PIP_INDEX_URL")
fi
if [ -n "${PIP_CERT:-}" ] && [ -f "$PIP_CERT" ]; then
  args+=(--volume "$PIP_CERT:/run/build-ca.pem:ro" --build-arg PIP_CERT=/run/build-ca.pem)
fi
log "podman build $IMAGE from $base"
podman build "${args[@]}" . >&2
podman image inspect --format '{{.Size}}' "$IMAGE" |
  awk -v img="$IMAGE" '{printf "[image] %s: %.1f MB\n", img, $1 / 1e6}' >&2
echo "$IMAGE"
