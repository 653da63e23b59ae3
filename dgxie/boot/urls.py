"""The URLs a node is given (pure). One place, so iPXE scripts, seeds and callbacks agree.

Per-node paths sit under `/boot/n/{boot_token}/`: the token locates the node (rotated on enroll
and reprovision); it is answered only from the node's own address, and a call that moves the
node's state also carries the node's one-time credential (docs/security.md).

    {public}/boot/ipxe?mac=..                    the iPXE script (by MAC; what DHCP hands to iPXE)
    {public}/boot/n/{token}/                     a node's seed base (cloud-init NoCloud `s=` value)
    {public}/boot/n/{token}/user-data            meta-data, vendor-data, preseed, kickstart likewise
    {public}/boot/n/{token}/events/{credential}  installer callbacks (POST)
    {public}/boot/n/{token}/bootstrap            the role's bootstrap script (once per install)
    {public}/boot/n/{token}/bootstrap/done/{credential}  its result (POST)
    {public}/images/{image}/{file}               boot image files
"""

from __future__ import annotations


def ipxe_script_url(public_url: str) -> str:
    """What DHCP gives an iPXE client; iPXE expands `${net0/mac}` itself."""
    return f"{public_url}/boot/ipxe?mac=${{net0/mac}}"


def node_base_url(public_url: str, boot_token: str) -> str:
    return f"{public_url}/boot/n/{boot_token}/"


def events_url(public_url: str, boot_token: str, credential: str) -> str:
    """Where the installer posts its callbacks: the credential is in the path (no shell-special
    character in either part, so a template may put it on a shell line unquoted)."""
    return f"{public_url}/boot/n/{boot_token}/events/{credential}"


def image_file_url(public_url: str, image: str, name: str) -> str:
    return f"{public_url}/images/{image}/{name}"


def expand_cmdline(template: str, *, public_url: str, boot_token: str, hostname: str, mac: str) -> str:
    """Fill an image's kernel cmdline placeholders: {base} {public_url} {hostname} {mac}.

    Unknown placeholders are left as they are (a cmdline may contain literal braces).
    """
    values = {"base": node_base_url(public_url, boot_token), "public_url": public_url, "hostname": hostname,
              "mac": mac}
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", value)
    return out
