"""Network boot protocol servers (DHCP, TFTP). Pure codecs; no SQL."""
