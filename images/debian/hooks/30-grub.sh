#!/bin/sh
# The installed system's kernel command line and menu: consoles on screen and serial (BMC SOL),
# a one second menu. The agent runs grub-install and grub-mkconfig with this file.
set -eu
root="$1"
install -d -m 0755 "$root/etc/default"
cat > "$root/etc/default/grub" <<GRUB
# Written by dgxie's image build (images/debian/hooks/30-grub.sh).
GRUB_DEFAULT=0
GRUB_TIMEOUT=1
GRUB_DISTRIBUTOR=Debian
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --speed=115200"
GRUB_DISABLE_OS_PROBER=true
GRUB
