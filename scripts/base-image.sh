#!/usr/bin/env bash
# A local stand-in for the official python:3.x-slim base image, made from Debian's own packages
# with debootstrap, for machines that reach a Debian mirror but no container registry.
#
#   scripts/base-image.sh [IMAGE]    build IMAGE unless it exists; print its name. The default
#                                    name carries a hash of this script, so editing it rebuilds.
#
# Beside it, IMAGE-build: the same system plus binutils, for the Dockerfile's build stage to
# strip the debugging symbols some wheels' extension modules carry (`strip` is not in the
# runtime image).
#
# The result has python3 (with venv and pip's bootstrap), CA certificates and the shell tools,
# and no package manager: images built on it install Python wheels, never Debian packages.
set -euo pipefail
cd "$(dirname "$0")/.."

SUITE="${DEBIAN_SUITE:-bookworm}"
IMAGE="${1:-localhost/cargohold-base:$SUITE-$(md5sum "$0" | cut -c1-8)}"
PODMAN="${PODMAN:-podman}"

log() { printf '[base-image] %s\n' "$*" >&2; }

if "$PODMAN" image exists "$IMAGE" && "$PODMAN" image exists "$IMAGE-build"; then
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
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates,binutils \
  "$SUITE" "$root" "$mirror" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}
# Packages a runtime never uses: apt and what only it needs, the filesystem tools, and Perl
# with debconf, its only user here (about 10 MB; nothing in an image built on this runs perl).
chroot "$root" dpkg --purge --force-depends --force-remove-essential apt libapt-pkg6.0 gpgv \
  debian-archive-keyring libgnutls30 libhogweed6 libnettle8 libp11-kit0 libtasn1-6 libidn2-0 \
  libunistring2 libseccomp2 libxxhash0 libstdc++6 e2fsprogs libext2fs2 libss2 logsave \
  debconf perl-base \
  >>"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}
# What a slim image leaves out: package caches and lists, documentation, translations, and
# glibc's character set converters (Python brings its own codecs); from the standard library,
# what only a developer at a prompt uses: help()'s topics, 2to3, the regression-test support
# and its C extension modules (_testcapi, ...).
rm -rf "$root"/usr/lib/x86_64-linux-gnu/gconv \
  "$root"/usr/lib/python3*/pydoc_data "$root"/usr/lib/python3*/lib2to3 \
  "$root"/usr/lib/python3*/test "$root"/usr/lib/python3*/lib-dynload/_*test* \
  "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old \
  "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
  "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/* \
  "$root"/var/log/* "$root"/tmp/* "$root"/dev/*
import_root() {
  tar -C "$root" --numeric-owner -c . |
    "$PODMAN" import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' \
      --change 'CMD ["python3"]' \
      - "$1" >/dev/null
  log "made $1"
}
import_root "$IMAGE-build"
# The runtime base: the same system without binutils and what only it needs, nor what only
# makes virtual environments with pip (the image copies one made in the build stage): the pip
# and setuptools wheels, ensurepip, distutils.
chroot "$root" dpkg --purge --force-depends binutils binutils-common binutils-x86-64-linux-gnu \
  libbinutils libctf0 libctf-nobfd0 libgprofng0 libjansson4 libsframe1 \
  python3-pip-whl python3-setuptools-whl \
  >>"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2
  exit 1
}
rm -rf "$root"/var/lib/dpkg/*-old "$root"/usr/share/doc/* "$root"/var/log/* \
  "$root"/usr/lib/python3*/ensurepip "$root"/usr/lib/python3*/distutils
import_root "$IMAGE"
echo "$IMAGE"
