#!/usr/bin/env bash
# A local stand-in for the official python:3.x-slim base image, made from Debian's own packages
# with debootstrap, for machines that reach a Debian mirror but no container registry.
#
#   scripts/base-image.sh [IMAGE]    build IMAGE unless it exists; print its name. The default
#                                    name carries a hash of this script, so editing it rebuilds.
#
# The result has python3 (with venv and pip's bootstrap), CA certificates and the shell tools,
# and no package manager: images built on it install Python wheels, never Debian packages.
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE="${DEBIAN_SUITE:-bookworm}"
IMAGE="${1:-localhost/cargohold-base:$SUITE-$(md5sum "$0" | cut -c1-8)}"
PODMAN="${PODMAN:-podman}"

log() { printf '[base-image] %s\n' "$*" >&2; }

if "$PODMAN" image exists "$IMAGE"; then
  echo "$IMAGE"
  exit 0
fi

# The mirror this machine's apt already uses, so the same network rules apply.
mirror="${DEBIAN_MIRROR:-}"
if [ -z "$mirror" ]; then
  mirror="$(grep -hoE '^(URIs:|deb) +[^ ]+' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list \
    2>/dev/null | grep -v security | awk '{print $2}' | head -n1 || true)"
fi
mirror="${mirror:-http://deb.debian.org/debian}"

if ! command -v debootstrap >/dev/null; then
  log "apt-get install debootstrap"
  export DEBIAN_FRONTEND=noninteractive
  apt-get -o DPkg::Lock::Timeout=600 update -qq
  apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends debootstrap >/dev/null
fi

work="$(mktemp -d "${TMPDIR:-/tmp}/cargohold-base.XXXXXX")"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
log "debootstrap $SUITE from $mirror"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  "$SUITE" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}
# Packages a runtime never uses: apt and what only it needs, the filesystem tools.
chroot "$root" dpkg --purge --force-depends apt libapt-pkg6.0 gpgv debian-archive-keyring \
  libgnutls30 libhogweed6 libnettle8 libp11-kit0 libtasn1-6 libidn2-0 libunistring2 \
  libseccomp2 libxxhash0 libstdc++6 e2fsprogs libext2fs2 libss2 logsave \
  >>"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}
# What a slim image leaves out: package caches and lists, documentation, translations, and
# glibc's character set converters (Python brings its own codecs).
rm -rf "$root"/usr/lib/x86_64-linux-gnu/gconv \
  "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old \
  "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
  "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
  "$root"/var/log/* "$root"/tmp/* "$root"/dev/*
tar -C "$root" --numeric-owner -c . |
  "$PODMAN" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$IMAGE" >/dev/null
log "made $IMAGE"
echo "$IMAGE"
