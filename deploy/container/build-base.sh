#!/usr/bin/env bash
# Build the base container image offline: a Debian root filesystem made with mmdebstrap from the
# Debian mirror this machine's APT reaches, imported with `podman import` (or `docker import`).
# No container registry is needed: the Dockerfile's BASE_IMAGE defaults to the image this makes.
#
# One image serves both containers of docker-compose.yml: dgxie (python3, python3-venv and the
# tools dgxie runs) and the database (postgresql, see deploy/container/postgres/).
#
# The root filesystem tarball is cached under $DGXIE_TEST_CACHE (default /var/cache/dgxie-test)
# /container-base/, keyed by suite, mirror, package list and this script; the image carries the same key in its
# `dgxie.base.key` label, so a rerun with nothing changed does nothing (a second or so).
#
# Environment: DGXIE_BASE_IMAGE (default localhost/dgxie-base:bookworm), DGXIE_BASE_SUITE
# (bookworm), DGXIE_BASE_MIRROR (http://deb.debian.org/debian), CONTAINER_ENGINE (podman|docker).
# Prints the image name on stdout (progress goes to stderr).
set -euo pipefail

SUITE=${DGXIE_BASE_SUITE:-bookworm}
MIRROR=${DGXIE_BASE_MIRROR:-http://deb.debian.org/debian}
IMAGE=${DGXIE_BASE_IMAGE:-localhost/dgxie-base:bookworm}
ENGINE=${CONTAINER_ENGINE:-podman}
CACHE=${DGXIE_TEST_CACHE:-/var/cache/dgxie-test}/container-base
PACKAGES=(
  python3 python3-venv ca-certificates curl
  ipxe ipmitool gnupg gpgv mmdebstrap zstd kmod
  postgresql postgresql-client
)

key=$( { printf '%s\n' "$SUITE" "$MIRROR" "${PACKAGES[@]}"; cat "${BASH_SOURCE[0]}"; } | sha256sum | cut -c1-16)
have=$("$ENGINE" image inspect --format '{{index .Config.Labels "dgxie.base.key"}}' "$IMAGE" 2>/dev/null || true)
if [ "$have" = "$key" ]; then
  echo "$IMAGE"
  exit 0
fi

mkdir -p "$CACHE"
tarball="$CACHE/rootfs-$key.tar"
if [ ! -s "$tarball" ]; then
  echo "build-base: mmdebstrap $SUITE from $MIRROR (${#PACKAGES[@]} packages) into $tarball" >&2
  include=$(IFS=,; echo "${PACKAGES[*]}")
  mmdebstrap --variant=minbase --mode=root --format=tar --architectures=amd64 \
    --include="$include" \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    "$SUITE" "$tarball.tmp" "$MIRROR" >&2
  mv "$tarball.tmp" "$tarball"
  # Older tarballs (another package list) are dead weight.
  find "$CACHE" -name 'rootfs-*.tar' ! -name "rootfs-$key.tar" -delete
fi

echo "build-base: $ENGINE import $tarball as $IMAGE" >&2
"$ENGINE" import \
  --change "LABEL dgxie.base.key=$key" \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  "$tarball" "$IMAGE" >&2
echo "$IMAGE"
