"""The BMC interface: power, one-time boot device, firmware inventory and update, system facts.

Protocol code only (ARCHITECTURE.md layering): no database, no configuration. Services build an
`Endpoint` from a node (decrypting its password with `site.box.open`) and pass it in. Passwords
live only in `Endpoint.password` (excluded from `repr`) and never appear in an error message.
"""

from __future__ import annotations

import abc
import hashlib
from dataclasses import dataclass, field
from typing import Any, Literal

PowerAction = Literal["on", "off", "cycle"]
PowerState = Literal["on", "off", "unknown"]
BootDevice = Literal["pxe", "disk"]
POWER_ACTIONS: tuple[str, ...] = ("on", "off", "cycle")
BOOT_DEVICES: tuple[str, ...] = ("pxe", "disk")


@dataclass(frozen=True)
class Options:
    """How dgxie talks to BMCs (from the `bmc:` config section, via `Site`)."""

    timeout: float = 10.0  # seconds per request (connect and read)
    retries: int = 2  # extra attempts after a connection error, timeout or 503, with backoff
    backoff: float = 0.5  # first retry delay; doubles each attempt
    per_bmc: int = 4  # at most this many requests in flight to one BMC
    verify: bool | str = False  # TLS: False (BMCs ship self-signed certs), True, or a CA bundle path


@dataclass(frozen=True)
class Endpoint:
    """One management endpoint of a node (a node may have several: host BMC, HGX baseboard)."""

    url: str  # https://host[:port] for Redfish, ipmi://host[:port] for IPMI
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    name: str = "bmc"

    @property
    def key(self) -> tuple[str, str | None, str]:
        """Pool key: a changed password must not reuse a session opened with the old one."""
        digest = hashlib.sha256((self.password or "").encode()).hexdigest()[:16]
        return (self.url.rstrip("/"), self.username, digest)

    @property
    def base(self) -> str:
        """scheme://host[:port] (a URL may name one system: .../redfish/v1/Systems/ID)."""
        return self.url.split("/redfish/", 1)[0].rstrip("/")

    @property
    def system(self) -> str | None:
        """The ComputerSystem path when the URL names one (multi-system services, emulators)."""
        _, sep, rest = self.url.partition("/redfish/v1/Systems/")
        return f"/redfish/v1/Systems/{rest.strip('/')}" if sep and rest.strip("/") else None

    @property
    def protocol(self) -> str:
        return "ipmi" if self.url.startswith("ipmi://") else "redfish"


class BmcError(Exception):
    """A BMC could not do what was asked. `kind` names the failure for reports and metrics."""

    kind = "error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BmcUnreachable(BmcError):
    kind = "unreachable"


class BmcTimeout(BmcError):
    kind = "timeout"


class BmcTlsError(BmcError):
    kind = "tls"


class BmcAuthError(BmcError):
    kind = "auth"


class BmcProtocolError(BmcError):
    """The BMC answered, but not with Redfish JSON (HTML error page, truncated body, odd shape)."""

    kind = "protocol"


class BmcUnsupported(BmcError):
    kind = "unsupported"


class BmcActionFailed(BmcError):
    kind = "failed"


@dataclass(frozen=True)
class Component:
    """One FirmwareInventory member."""

    id: str
    version: str | None
    name: str = ""
    updateable: bool | None = None
    endpoint: str = "bmc"


@dataclass
class Inventory:
    """What one endpoint reported: platform identity, firmware components, and quirks met."""

    endpoint: str
    model: str | None = None
    manufacturer: str | None = None
    serial: str | None = None
    components: list[Component] = field(default_factory=list)
    # Manager FirmwareVersion per manager id, kept beside the inventory (the inventory wins).
    managers: dict[str, str | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    requests: int = 0
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskResult:
    """The end of a Redfish Task (or of an IPMI action that has no task)."""

    uri: str | None
    state: str  # DMTF TaskState: Completed, Exception, Killed, Cancelled, ... or Timeout
    percent: int | None = None
    messages: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.state == "Completed"


class Bmc(abc.ABC):
    """One node's BMC. Implementations raise `BmcError` subclasses, nothing else."""

    endpoint: Endpoint

    @abc.abstractmethod
    def power_state(self) -> PowerState: ...

    @abc.abstractmethod
    def power(self, action: PowerAction) -> PowerState:
        """Do `action`; returns the state read back afterwards (may still be changing)."""

    @abc.abstractmethod
    def boot_once(self, device: BootDevice) -> None:
        """Boot from `device` on the next boot only."""

    def firmware_inventory(self) -> Inventory:
        raise BmcUnsupported(f"{self.endpoint.url}: {self.endpoint.protocol} has no firmware inventory")

    def update_firmware(self, image_uri: str, targets: list[str] | None = None) -> TaskResult:
        raise BmcUnsupported(f"{self.endpoint.url}: {self.endpoint.protocol} cannot update firmware")

    def system_facts(self) -> dict[str, Any]:
        raise BmcUnsupported(f"{self.endpoint.url}: {self.endpoint.protocol} has no system facts")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release sessions/connections (a no-op where there are none)."""
