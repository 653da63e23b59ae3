"""The BMC driver interface (`Bmc`), its options, endpoints, typed results and errors.

Every caller gets a driver from `dgxie.bmc.drivers.connect(endpoint, options)` and calls the methods of
`Bmc`, whatever the protocol; which driver serves a URL is decided there and only there. The
interface is Ironic's split without its weight, one class:

- power (PowerInterface): `power_state()`, `power(action)`;
- management (ManagementInterface): `boot_once(device)`;
- inventory (InspectInterface + FirmwareInterface reads): `inventory()`: platform identity,
  firmware components, manager versions and system facts in one read;
- firmware (FirmwareInterface): `update_firmware(image_uri)`, `push_firmware(data, filename)`.

What a protocol cannot do raises `BmcUnsupported` (the defaults here); every other failure is a
`BmcError` subclass too, and nothing else escapes a driver. Protocol code only (ARCHITECTURE.md
layering): no database, no configuration. Services build an `Endpoint` from a node (decrypting its
password with `site.box.open`) and pass it in. Passwords live only in `Endpoint.password`
(excluded from `repr`) and never appear in an error message.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar, Literal

PowerAction = Literal["on", "off", "cycle"]
PowerState = Literal["on", "off", "unknown"]
BootDevice = Literal["pxe", "disk"]
POWER_ACTIONS: tuple[str, ...] = ("on", "off", "cycle")
BOOT_DEVICES: tuple[str, ...] = ("pxe", "disk")
POWER_TARGET: dict[str, PowerState] = {"on": "on", "off": "off", "cycle": "on"}  # the state an action ends in


@dataclass(frozen=True)
class Options:
    """How dgxie talks to BMCs (from the `bmc:` config section, via `Site.bmc_options`)."""

    timeout: float = 10.0  # seconds per request (connect and read)
    retries: int = 2  # extra attempts after a connection error, timeout or 503, with backoff
    backoff: float = 0.5  # first retry delay; doubles each attempt
    per_bmc: int = 4  # at most this many Redfish action requests in flight to one BMC (per process)
    verify: bool | str = True  # TLS: True (system CAs), a CA bundle path, or False (no certificate checks)
    allow_http: bool = False  # plain http:// Redfish (credentials in clear): refused by `connect()` unless True


@dataclass(frozen=True)
class Endpoint:
    """One management endpoint of a node (a node may have several: host BMC, HGX baseboard)."""

    url: str  # https://host[:port][/redfish/v1/Systems/ID] for Redfish, ipmi://host[:port] for IPMI
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


class BmcError(Exception):
    """A BMC could not do what was asked. `kind` names the failure for reports and metrics; the
    message is one line (whitespace and line breaks from a BMC's answer are folded)."""

    kind = "error"

    def __init__(self, message: str) -> None:
        message = " ".join(message.split())
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
    """The driver (or the URL's scheme) cannot do this at all; retrying will not help."""

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
    """What one endpoint reported: platform identity, firmware components, system facts, quirks met."""

    endpoint: str
    model: str | None = None
    manufacturer: str | None = None
    serial: str | None = None
    components: list[Component] = field(default_factory=list)
    # Manager FirmwareVersion per manager id, kept beside the inventory (the inventory wins).
    managers: dict[str, str | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    requests: int = 0
    facts: dict[str, Any] = field(default_factory=dict)  # dgxie.bmc.facts.system_facts() keys


@dataclass(frozen=True)
class TaskResult:
    """The end of a firmware update: its Redfish Task's final state, or `Timeout`."""

    uri: str | None
    state: str  # DMTF TaskState: Completed, Exception, Killed, Cancelled, ... or Timeout
    percent: int | None = None
    messages: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.state == "Completed"


TaskProgress = Callable[[TaskResult], None]  # called with the Task's state at each poll


class Bmc(abc.ABC):
    """One endpoint's driver. Get one from `dgxie.bmc.drivers.connect()`; use it as a context manager (or
    call `close()`) so it can release what it holds. Raises `BmcError` subclasses, nothing else."""

    protocol: ClassVar[str]  # "redfish" | "ipmi": recorded in events
    endpoint: Endpoint

    # -- power -----------------------------------------------------------------------------
    @abc.abstractmethod
    def power_state(self) -> PowerState: ...

    @abc.abstractmethod
    def power(self, action: PowerAction) -> PowerState:
        """Do `action` (a cycle of an off machine starts it); returns the state read back
        afterwards (it may still be changing)."""

    # -- management ------------------------------------------------------------------------
    @abc.abstractmethod
    def boot_once(self, device: BootDevice) -> None:
        """Boot from `device` on the next boot only."""

    # -- inventory -------------------------------------------------------------------------
    def inventory(self) -> Inventory:
        """Platform identity, firmware components, manager versions and system facts."""
        raise self._unsupported("has no firmware inventory")

    # -- firmware --------------------------------------------------------------------------
    def update_firmware(self, image_uri: str, targets: list[str] | None = None, *,
                        timeout: float = 3600, poll: float = 5.0, progress: TaskProgress | None = None) -> TaskResult:
        """Have the BMC fetch `image_uri` and apply it to `targets` (default: the BMC decides);
        waits (bounded by `timeout`) for the end of the update, calling `progress` with the Task as
        read at each poll (its `uri` known from the first call on)."""
        raise self._unsupported("cannot update firmware")

    def push_firmware(self, data: bytes, filename: str, targets: list[str] | None = None, *,
                      timeout: float = 3600, poll: float = 5.0, progress: TaskProgress | None = None) -> TaskResult:
        """Upload the image itself to the BMC, then as `update_firmware`."""
        raise self._unsupported("cannot update firmware")

    def follow_task(self, uri: str, timeout: float, poll: float = 5.0,
                    progress: TaskProgress | None = None) -> TaskResult:
        """Poll the update Task at `uri` (one an earlier call started) until it ends, as above."""
        raise self._unsupported("cannot update firmware")

    # -- lifetime --------------------------------------------------------------------------
    def close(self) -> None:  # noqa: B027 - optional hook
        """Release what this driver holds (a no-op where there is nothing)."""

    def __enter__(self) -> Bmc:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _unsupported(self, what: str) -> BmcUnsupported:
        return BmcUnsupported(f"{self.endpoint.url}: {self.protocol} {what}")
