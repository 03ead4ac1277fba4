#!/usr/bin/env bash
# Install what `make bench` needs beyond the project venv, at pinned versions, into a stable
# cache so repeat runs cost nothing:
#   - Debian: docker-registry (CNCF Distribution 2.8, the OCI peer), wrk and hey (load
#     generators: wrk cannot send HEAD requests, hey can),
#     nginx-light (the static file server that shows what loopback HTTP can do), skopeo;
#   - $CACHE/peers: pypiserver and devpi, the PyPI peers, in a venv of their own so their
#     dependencies never meet the project's;
#   - $CACHE/tools: matplotlib for the chart, py-spy for profiles.
# Prints nothing on a repeat run.
set -euo pipefail

CACHE="${CARGOHOLD_BENCH_CACHE:-$HOME/.cache/cargohold/bench}"
PYTHON="${PYTHON:-python3}"

PEERS_REQUIREMENTS="pypiserver[cache]==2.4.2 waitress==3.0.2 passlib==1.7.4 devpi-server==6.20.3 devpi-client==7.3.0"
TOOLS_REQUIREMENTS="matplotlib==3.11.2 py-spy==0.4.3"

log() { printf '[install-bench-tools] %s\n' "$*" >&2; }

# ---- Debian packages ---------------------------------------------------------------------
missing=()
for pair in docker-registry:docker-registry wrk:wrk hey:hey nginx:nginx-light skopeo:skopeo; do
  command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || missing+=("${pair#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # The packages' maintainer scripts would start nginx on port 80 and a registry on 5000 as
  # system services; the bench starts its own on free ports, so keep those from starting.
  created_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    created_policy=1
  fi
  trap 'if [ "$created_policy" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi' EXIT
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---- Python venvs ------------------------------------------------------------------------
venv() {  # folder requirements...
  local dir=$1
  shift
  local want="$*"
  if [ -x "$dir/bin/python" ] && [ "$(cat "$dir/.requirements" 2>/dev/null)" = "$want" ]; then
    return
  fi
  log "venv $dir: $want"
  rm -rf "$dir"
  "$PYTHON" -m venv "$dir"
  "$dir/bin/pip" install -q --disable-pip-version-check --upgrade pip
  # shellcheck disable=SC2086 # one word per requirement
  "$dir/bin/pip" install -q --disable-pip-version-check $want
  echo "$want" > "$dir/.requirements"
}
mkdir -p "$CACHE"
venv "$CACHE/peers" $PEERS_REQUIREMENTS
venv "$CACHE/tools" $TOOLS_REQUIREMENTS
