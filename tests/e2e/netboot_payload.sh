#!/bin/bash
# Build the e2e boot payload (after ../shared/harness/build-initrd.sh): Debian's stock kernel
# (downloaded with `apt-get download`, never installed) + a busybox initrd whose /init loads the
# NIC modules, runs udhcpc, GETs the URL in `dgxie.callback=`; given `dgxie.seed=` (a node's seed
# base), it fetches the node's user-data as an installer does and posts `event=finished` to the
# callback URL in it (the one carrying the node's install credential); then it powers off.
#   netboot_payload.sh OUTDIR   -> OUTDIR/vmlinuz, OUTDIR/initrd.img (cached: reruns are instant)
set -euo pipefail
OUT=${1:?usage: $0 OUTDIR}
mkdir -p "$OUT"
VERSION=4  # bump when the initrd changes, so cached payloads are rebuilt
[[ -s $OUT/vmlinuz && -s $OUT/initrd.img && "$(cat "$OUT/VERSION" 2>/dev/null)" == "$VERSION" ]] && {
  echo "cached: $OUT"; exit 0; }
WORK=$(mktemp -d "$OUT/.build.XXXXXX"); trap 'rm -rf "$WORK"' EXIT

KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
if [[ -z $KPKG ]]; then apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
  KPKG=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}'); fi
KVER=${KPKG#linux-image-}
(cd "$WORK" && apt-get download -q "$KPKG" >/dev/null)
mkdir -p "$WORK/k"
dpkg-deb --fsys-tarfile "$WORK"/${KPKG}_*.deb | tar -x -C "$WORK/k" --wildcards './boot/vmlinuz-*' \
  "./lib/modules/$KVER/modules.builtin*" "./lib/modules/$KVER/modules.order" \
  "./lib/modules/$KVER/kernel/drivers/net/*" "./lib/modules/$KVER/kernel/drivers/virtio/*" \
  "./lib/modules/$KVER/kernel/net/core/*"
depmod -b "$WORK/k" "$KVER"   # the deb ships no modules.dep

S="$WORK/initrd"; mkdir -p "$S"/{bin,etc,proc,sys,dev,tmp,lib/modules}
cp /bin/busybox "$S/bin/busybox"
for a in $("$S/bin/busybox" --list); do [[ $a == busybox ]] || ln -sf busybox "$S/bin/$a"; done
: > "$S/etc/modload"
for m in virtio_pci virtio_net e1000 e1000e; do
  modprobe -d "$WORK/k" -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'
done | awk '!seen[$0]++' | while read -r ko; do
  name=$(basename "$ko"); name=${name%%.ko*}
  case "$ko" in *.ko) cp "$ko" "$S/lib/modules/$name.ko" ;; *.ko.xz) xz -dc "$ko" > "$S/lib/modules/$name.ko" ;;
    *.ko.zst) zstd -dc "$ko" > "$S/lib/modules/$name.ko" ;; esac
  echo "$name" >> "$S/etc/modload"
done
cat > "$S/etc/udhcpc.script" <<'EOF'
#!/bin/sh
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up ;;
  bound|renew) ip addr flush dev "$interface"; ip addr add "$ip/${mask:-24}" dev "$interface"
    echo "IP=$ip" > /tmp/lease.env ;;
esac
exit 0
EOF
cat > "$S/init" <<'EOF'
#!/bin/busybox sh
export PATH=/bin
mount -t proc proc /proc; mount -t sysfs sysfs /sys; mount -t devtmpfs devtmpfs /dev 2>/dev/null
log() { echo "[dgxie-e2e-init] $*"; }
finish() { log "$1"; sync; poweroff -f; sleep 5; echo o > /proc/sysrq-trigger; }
CB=""; SEED=""
for p in $(cat /proc/cmdline); do case "$p" in dgxie.callback=*) CB="${p#dgxie.callback=}" ;;
  dgxie.seed=*) SEED="${p#dgxie.seed=}" ;; esac; done
for m in $(cat /etc/modload); do insmod "/lib/modules/$m.ko" 2>/dev/null; done
IFACE=""; i=0
while [ -z "$IFACE" ] && [ $i -lt 50 ]; do
  for n in /sys/class/net/*; do n=${n##*/}; [ "$n" != lo ] && IFACE=$n && break; done
  [ -z "$IFACE" ] && { sleep 0.2; i=$((i+1)); }
done
[ -n "$IFACE" ] || finish "FAIL: no NIC"
ip link set lo up; ip link set "$IFACE" up
udhcpc -i "$IFACE" -s /etc/udhcpc.script -n -q -t 10 -T 2 || finish "FAIL: no DHCP lease"
. /tmp/lease.env
[ -n "$CB" ] || finish "FAIL: no dgxie.callback= on the cmdline"
URL="${CB}&ip=${IP}&mac=$(cat /sys/class/net/$IFACE/address)"
log "GET $URL"
# busybox 1.35 wget -T segfaults (harness gotcha 6): bound it with timeout instead
if [ -n "$SEED" ]; then  # what an installer does (docs/lifecycle.md): fetch the config, report back
  i=0  # dgxie answers only the node's leased address; allow for the lease reaching its database
  until timeout 20 wget -q -O /tmp/ud "${SEED}user-data"; do
    i=$((i+1)); [ $i -lt 5 ] || finish "FAIL: user-data"; sleep 1; done
  EV=$(sed -n 's/^ *endpoint: *"*\([^"]*\)"*$/\1/p' /tmp/ud | head -n 1)
  [ -n "$EV" ] || finish "FAIL: no callback URL in the user-data"
  log "POST event=finished $EV"
  timeout 20 wget -q -O /tmp/ev --post-data "event=finished&message=e2e-initrd" "$EV" || finish "FAIL: event finished"
fi
# last, so a test that waits for this GET knows the events above were posted
timeout 20 wget -q -O /tmp/cb "$URL" || finish "FAIL: callback"
finish "DGXIE-CALLBACK-OK"
EOF
chmod +x "$S/init" "$S/etc/udhcpc.script"
mknod -m 600 "$S/dev/console" c 5 1; mknod -m 666 "$S/dev/null" c 1 3
(cd "$S" && find . -print0 | sort -z | cpio --null -o -H newc --quiet --owner 0:0) | gzip -6 > "$WORK/initrd.img"
cp "$WORK/k/boot/vmlinuz-$KVER" "$WORK/vmlinuz"
mv "$WORK/initrd.img" "$OUT/initrd.img"; mv "$WORK/vmlinuz" "$OUT/vmlinuz"; echo "$VERSION" > "$OUT/VERSION"
echo "built $OUT (kernel $KVER)"
