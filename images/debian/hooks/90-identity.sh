#!/bin/sh
# Nothing that identifies one machine stays in the image: every node makes its own SSH host keys
# (cloud-init) and machine-id (systemd, first boot); hostname and resolver come from cloud-init and
# DHCP, not from the build host.
set -eu
root="$1"
rm -f "$root"/etc/ssh/ssh_host_*
: > "$root/etc/machine-id"
rm -f "$root/var/lib/dbus/machine-id"
rm -f "$root/etc/hostname"
echo localhost > "$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
rm -f "$root/etc/resolv.conf"
