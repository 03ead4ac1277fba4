#!/usr/bin/env bash
# Install every external client the test suite drives, at pinned versions, into a stable cache
# so repeat runs cost nothing. Debian packages via apt-get; Go tools via `go install`.
set -euo pipefail

TOOLS="${CARGOHOLD_TOOLS:-$HOME/.cache/cargohold/tools}"
BIN="$TOOLS/bin"
mkdir -p "$BIN"
export GOBIN="$BIN" GOFLAGS="${GOFLAGS:--buildvcs=false}"
export PATH="/usr/local/go/bin:$PATH"

HELM_VERSION=v3.21.4
ORAS_VERSION=v1.3.6
CRANE_VERSION=v0.22.1
COSIGN_VERSION=v3.1.3
# The conformance module has no tags of its own; this is the revision the Go module proxy
# serves. It tests the v1.1 specification when run with OCI_VERSION=1.1.
CONFORMANCE_MODULE=github.com/opencontainers/distribution-spec/conformance
CONFORMANCE_VERSION=v0.0.0-20260831232431-97274622c111

log() { printf '[install-tools] %s\n' "$*" >&2; }

# ---- Debian packages ---------------------------------------------------------------------
missing=()
for pair in podman:podman skopeo:skopeo buildah:buildah newuidmap:uidmap \
            fuse-overlayfs:fuse-overlayfs docker:docker.io \
            runc:runc debootstrap:debootstrap chromium:chromium; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---- Go tools ----------------------------------------------------------------------------
go_tool() {  # name module version
  local name=$1 module=$2 version=$3 stamp="$BIN/.$1-version"
  if [ -x "$BIN/$name" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$version" ]; then
    return
  fi
  log "go install $module@$version"
  go install "$module@$version"
  echo "$version" > "$stamp"
}
go_tool oras oras.land/oras/cmd/oras "$ORAS_VERSION"
go_tool crane github.com/google/go-containerregistry/cmd/crane "$CRANE_VERSION"
go_tool helm helm.sh/helm/v3/cmd/helm "$HELM_VERSION"
# cosign signs test images in both of its signature forms (tag scheme and sigstore bundle).
go_tool cosign github.com/sigstore/cosign/v3/cmd/cosign "$COSIGN_VERSION"

# The conformance suite is a test binary: build it in a scratch module that requires it.
stamp="$BIN/.conformance-version"
if [ ! -x "$BIN/conformance.test" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$CONFORMANCE_VERSION" ]; then
  log "go test -c $CONFORMANCE_MODULE@$CONFORMANCE_VERSION"
  build="$TOOLS/conformance-build"
  rm -rf "$build" && mkdir -p "$build"
  (
    cd "$build"
    go mod init cargohold-conformance-build >/dev/null 2>&1
    go get "$CONFORMANCE_MODULE@$CONFORMANCE_VERSION" >/dev/null 2>&1
    go test -c -o "$BIN/conformance.test" "$CONFORMANCE_MODULE"
  )
  echo "$CONFORMANCE_VERSION" > "$stamp"
fi

# ---- Terraform, checked offline ------------------------------------------------------------
# hcl's own formatter (terraform itself cannot be installed from the reachable registries).
HCLFMT_VERSION=v2.25.0
go_tool hclfmt github.com/hashicorp/hcl/v2/cmd/hclfmt "$HCLFMT_VERSION"
# checkov pins many packages of its own, so it gets a virtualenv of its own, not the project's.
CHECKOV_VERSION=3.3.30
CHECKOV_VENV="$TOOLS/checkov-$CHECKOV_VERSION"
(
  flock 9  # two checkouts installing at once must not share a half-made virtualenv
  if [ ! -x "$CHECKOV_VENV/bin/checkov" ]; then
    log "pip install checkov==$CHECKOV_VERSION into $CHECKOV_VENV"
    rm -rf "$CHECKOV_VENV"
    python3 -m venv "$CHECKOV_VENV"
    "$CHECKOV_VENV/bin/pip" install -q "checkov==$CHECKOV_VERSION"
  fi
  ln -sfn "$CHECKOV_VENV/bin/checkov" "$BIN/checkov"
) 9>"$TOOLS/.checkov.lock"

# ---- report ------------------------------------------------------------------------------
printf '%-18s %s\n' \
  podman "$(podman --version)" \
  skopeo "$(skopeo --version)" \
  buildah "$(buildah --version | cut -d' ' -f1-3)" \
  docker "$(docker --version) (the CLI only: manifest inspect needs no daemon)" \
  chromium "$(chromium --version 2>/dev/null) (the console's browser tests, driven by Playwright)" \
  oras "$BIN/oras $(cat "$BIN/.oras-version")" \
  crane "$BIN/crane $(cat "$BIN/.crane-version")" \
  helm "$BIN/helm $(cat "$BIN/.helm-version")" \
  cosign "$BIN/cosign $(cat "$BIN/.cosign-version")" \
  conformance.test "$BIN/conformance.test $(cat "$BIN/.conformance-version")" \
  hclfmt "$BIN/hclfmt $HCLFMT_VERSION" \
  checkov "$BIN/checkov $CHECKOV_VERSION" >&2
