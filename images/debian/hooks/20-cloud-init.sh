#!/bin/sh
# cloud-init: the NoCloud seed the agent points it at, never a cloud metadata address; it keeps
# the APT sources of the image (dgxie's mirror) instead of writing deb.debian.org ones.
set -eu
root="$1"
cat > "$root/etc/cloud/cloud.cfg.d/90_dgxie.cfg" <<CFG
# Written by dgxie's image build (images/debian/hooks/20-cloud-init.sh).
datasource_list: [ NoCloud, None ]
apt:
  preserve_sources_list: true
system_info:
  package_mirrors:
    - arches: [default]
      failsafe:
        primary: $DGXIE_MIRROR_URL
        security: $DGXIE_MIRROR_URL
CFG
