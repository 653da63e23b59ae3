"""The boot decision (pure): node state + client -> install | local disk | discovery | ignore.

Every way into a node's fate goes through `decide()`: the DHCP server (whether to answer at all),
the TFTP server and the iPXE endpoint (what to boot). None of them re-implements it.

    unknown MAC / discovered  -> discovery when discovery is on, else ignore (no rogue DHCP)
    enrolled / installing     -> install the profile's image (ignore-with-message if it has none)
    installed and later       -> local disk (never an endless reinstall loop)
    failed                    -> local disk; an admin reprovisions to reinstall
    erasing                   -> the deploy agent, which wipes the disks (docs/deploy.md)
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from dgxie.boot.state import State


class Action(StrEnum):
    INSTALL = "install"
    LOCAL_DISK = "local"
    DISCOVERY = "discovery"
    ERASE = "erase"
    IGNORE = "ignore"


class Client(StrEnum):
    """What is asking, from DHCP option 93 (RFC 4578) / 77 (RFC 3004) / 60."""

    BIOS = "bios"  # arch 0: legacy PXE -> undionly.kpxe
    UEFI_X64 = "uefi-x64"  # arch 7 / 9 -> ipxe.efi (or snponly.efi)
    UEFI_ARM64 = "uefi-arm64"  # arch 11 -> arm64 ipxe.efi
    HTTP_X64 = "http-x64"  # arch 16: UEFI HTTP boot -> an http:// URL
    HTTP_ARM64 = "http-arm64"  # arch 19
    IPXE = "ipxe"  # user class "iPXE": the script URL, never a binary again
    OTHER = "other"  # dhclient, udhcpc, an installer: an address only


@dataclass(frozen=True)
class Decision:
    action: Action
    reason: str


IMAGE_TEMPLATE_FAMILY = "image"  # profile template `image/deploy`: dgxie's agent writes an OS image
EXTERNAL_TEMPLATE = "external"  # the installer brings its own config (e.g. imported from DGXIE)


def deploys_image(template: str | None) -> bool:
    """True for a profile whose install is the deploy agent writing an image (not an installer)."""
    return template is not None and template.split("/", 1)[0] == IMAGE_TEMPLATE_FAMILY


INSTALL_STATES = frozenset({State.ENROLLED, State.INSTALLING})
LOCAL_STATES = frozenset({State.INSTALLED, State.BOOTSTRAPPING, State.READY, State.FAILED})


def decide(state: str | None, *, discovery: bool, has_image: bool = True) -> Decision:
    """What a node in `state` (None: unknown MAC) should boot."""
    if state is None or state == State.DISCOVERED:
        if discovery:
            return Decision(Action.DISCOVERY, "unknown node: discovery" if state is None else "discovered node")
        return Decision(Action.IGNORE, "not enrolled")
    if state in INSTALL_STATES:
        if not has_image:
            return Decision(Action.IGNORE, "its profile has no image")
        return Decision(Action.INSTALL, f"{state}: install")
    if state == State.ERASING:
        return Decision(Action.ERASE, "erasing: the agent wipes its disks")
    if state in LOCAL_STATES:
        return Decision(Action.LOCAL_DISK, f"{state}: boot from local disk")
    return Decision(Action.IGNORE, f"unknown state {state!r}")


def client_of(arch: int | None, user_class: bytes | None, vendor_class: bytes | None) -> Client:
    """Classify a DHCP client. iPXE wins over arch (it sends both); no PXEClient/HTTPClient
    vendor class means an ordinary DHCP client that gets an address only."""
    if user_class is not None and b"iPXE" in user_class:
        return Client.IPXE
    vc = vendor_class or b""
    if arch is None or not vc.startswith((b"PXEClient", b"HTTPClient")):
        return Client.OTHER
    if arch == 0:
        return Client.BIOS
    if arch in (6, 7, 9):
        return Client.UEFI_X64
    if arch == 11:
        return Client.UEFI_ARM64
    if arch == 16:
        return Client.HTTP_X64
    if arch == 19:
        return Client.HTTP_ARM64
    return Client.OTHER


BOOT_FILES = {
    Client.BIOS: "undionly.kpxe",
    Client.UEFI_X64: "ipxe.efi",
    Client.UEFI_ARM64: "arm64/ipxe.efi",
}
