#!/bin/sh
# APT reads only dgxie's mirror, verified with the mirror's own signing key; nothing from the
# internet. The key is the one dgxie serves as $DGXIE_MIRROR_URL/dgxie-archive-key.gpg (a filtered
# mirror) or the upstream keyring the mirror was configured with (an unfiltered one).
set -eu
root="$1"
install -d -m 0755 "$root/etc/apt/keyrings" "$root/etc/apt/sources.list.d"
install -m 0644 "$DGXIE_MIRROR_KEY" "$root/etc/apt/keyrings/dgxie-$DGXIE_MIRROR_NAME.gpg"
rm -f "$root/etc/apt/sources.list"
cat > "$root/etc/apt/sources.list.d/dgxie.sources" <<SOURCES
Types: deb
URIs: $DGXIE_MIRROR_URL
Suites: $DGXIE_SUITE
Components: $DGXIE_COMPONENTS
Signed-By: /etc/apt/keyrings/dgxie-$DGXIE_MIRROR_NAME.gpg
SOURCES
