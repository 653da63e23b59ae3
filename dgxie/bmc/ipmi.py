"""IPMI driver: power and boot device through `ipmitool -I lanplus -C 3` (IPMI v2.0 RMCP+, suite 3).

Inventory and firmware updates are Redfish only: here they raise `BmcUnsupported` (the
`Bmc` defaults).

`-C 3` (HMAC-SHA1 / AES-CBC-128) is pinned: letting ipmitool discover a suite costs ~10 s per call
on ipmi_sim, and suite 17 is refused there. The password reaches ipmitool through the
`IPMI_PASSWORD` environment variable (`-E`), never the command line, so `ps` cannot show it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import ClassVar
from urllib.parse import urlsplit

from dgxie.bmc.base import (
    Bmc,
    BmcActionFailed,
    BmcAuthError,
    BmcTimeout,
    BmcUnreachable,
    BmcUnsupported,
    BootDevice,
    Endpoint,
    Options,
    PowerAction,
    PowerState,
)

# With -v, ipmitool says why a session failed: RAKP errors mean the BMC answered and refused us.
AUTH_HINTS = ("rakp 2 hmac is invalid", "unauthorized name", "invalid user", "insufficient privilege")


def parse_power(text: str) -> PowerState:
    """`Chassis Power is on` -> on."""
    line = next((ln for ln in text.splitlines() if "chassis power is" in ln.lower()), "")
    low = line.strip().lower()
    return "on" if low.endswith(" on") else "off" if low.endswith(" off") else "unknown"


def parse_bootparam(text: str) -> dict[str, bool | str]:
    """`chassis bootparam get 5` -> {"device": "pxe"|..., "once": bool, "efi": bool}."""
    low = text.lower()
    device = "pxe" if "force pxe" in low else "disk" if "force boot from default hard-drive" in low else (
        "none" if "no override" in low else "other")
    return {"device": device, "once": "options apply to only next boot" in low, "efi": "bios efi boot" in low}


class IpmiBmc(Bmc):
    protocol: ClassVar[str] = "ipmi"

    def __init__(self, endpoint: Endpoint, opts: Options | None = None, *, efi: bool = True) -> None:
        self.endpoint = endpoint
        self.opts = opts or Options()
        self.efi = efi
        u = urlsplit(endpoint.url)
        if u.scheme != "ipmi" or not u.hostname:
            raise BmcUnsupported(f"{endpoint.url}: not an ipmi://HOST[:PORT] URL")
        self.host, self.port = u.hostname, u.port or 623

    def _unsupported(self, what: str) -> BmcUnsupported:
        return BmcUnsupported(f"{self.endpoint.url}: IPMI {what} (inventory and firmware updates need a Redfish BMC)")

    def _run(self, *args: str) -> str:
        exe = shutil.which("ipmitool")
        if exe is None:
            raise BmcUnsupported(f"{self.endpoint.url}: ipmitool is not installed (Debian: apt install ipmitool)")
        timeout = max(1, int(self.opts.timeout))
        cmd = [exe, "-v", "-I", "lanplus", "-C", "3", "-H", self.host, "-p", str(self.port),
               "-U", self.endpoint.username or "", "-E", "-N", str(timeout), "-R", str(self.opts.retries + 1), *args]
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "IPMI_PASSWORD": self.endpoint.password or ""}
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, env=env,
                               timeout=timeout * (self.opts.retries + 2) + 5, check=False)
        except subprocess.TimeoutExpired:
            raise BmcTimeout(f"{self.endpoint.url}: ipmitool {args[0]} timed out") from None
        if p.returncode != 0:
            lines = [ln for ln in (p.stderr + p.stdout).splitlines() if ln.strip() and "IANA PEN" not in ln]
            text = " ".join(ln.strip(" >") for ln in lines)[-300:]
            if any(h in text.lower() for h in AUTH_HINTS):
                raise BmcAuthError(f"{self.endpoint.url}: IPMI session refused (credentials?): {text}")
            if "unable to establish" in text.lower() or "no response" in text.lower():
                raise BmcUnreachable(f"{self.endpoint.url}: {text}")
            raise BmcActionFailed(f"{self.endpoint.url}: ipmitool {' '.join(args)}: {text}")
        return p.stdout

    def power_state(self) -> PowerState:
        return parse_power(self._run("chassis", "power", "status"))

    def power(self, action: PowerAction) -> PowerState:
        if action == "cycle" and self.power_state() == "off":
            action = "on"  # IPMI refuses a cycle of an off chassis; starting it is what was meant
        self._run("chassis", "power", action)
        return self.power_state()

    def boot_once(self, device: BootDevice) -> None:
        args = ["chassis", "bootdev", "pxe" if device == "pxe" else "disk"]
        if self.efi:
            args.append("options=efiboot")
        self._run(*args)

    def boot_override(self) -> dict[str, bool | str]:
        return parse_bootparam(self._run("chassis", "bootparam", "get", "5"))
