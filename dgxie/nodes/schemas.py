"""Input and output shapes of the node inventory and of power/boot, shared by the API and the CLI.

Output field names are part of the operator contract (ARCHITECTURE.md): fields may be added,
never renamed. The BMC password is write-only.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from dgxie.bmc.base import BootDevice, PowerAction, PowerState
from dgxie.nodes.macs import canonical_mac
from dgxie.validation import check_document

HOSTNAME_RE = re.compile(r"^(?=.{1,63}$)[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
TAG_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,62}$")


def check_hostname(v: str) -> str:
    v = v.strip().lower()
    if not HOSTNAME_RE.match(v):
        raise ValueError(f"{v!r} is not a valid hostname (RFC 1123 label: a-z, 0-9, '-', at most 63)")
    return v


def check_ip(v: str | None) -> str | None:
    if v is None or v == "":
        return None
    try:
        return str(ipaddress.IPv4Address(v.strip()))
    except ValueError:
        raise ValueError(f"{v!r} is not an IPv4 address") from None


def check_bmc_url(v: str | None) -> str | None:
    if v is None or v == "":
        return None
    if not re.match(r"^(https?|ipmi|redfish\+https?)://[^\s/]+(/\S*)?$", v):
        raise ValueError(f"{v!r} is not a BMC URL (https://HOST, http://HOST:PORT or ipmi://HOST[:PORT])")
    return v.rstrip("/")


MACHINE_FACTS = ("hardware", "commissioning")  # facts read from the machine (BMC scan, the agent), not set


def check_facts(v: dict[str, Any] | None) -> dict[str, Any] | None:
    if v is not None and (bad := sorted(set(v) & set(MACHINE_FACTS))):
        raise ValueError(f"{', '.join(bad)}: read from the machine (BMC scan, agent commissioning), not set")
    return check_document(v)


def _example(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(json_schema_extra={"examples": list(examples)})


_TIME = "2026-11-30T08:00:00Z"
NODE_EXAMPLE: dict[str, Any] = {
    "id": 7, "hostname": "gpu01", "mac": "02:00:00:00:00:01", "ip": "10.0.0.21", "profile": "ubuntu-gpu",
    "role": "slurmd", "state": "ready", "tags": ["rack1"], "interfaces": [{"mac": "02:00:00:00:00:01", "name": "eno1"}],
    "bmc": {"url": "https://10.0.1.21", "username": "admin", "password_set": True}, "facts": {"rack": "r1"},
    "vars": {"admin_user": "ops"}, "state_changed_at": _TIME, "created_at": _TIME, "updated_at": _TIME}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class InterfaceIn(_In):
    mac: str
    name: str | None = Field(default=None, max_length=32)

    _mac = field_validator("mac")(classmethod(lambda cls, v: canonical_mac(v)))


class BmcIn(_In):
    url: str | None = None
    username: str | None = Field(default=None, max_length=128)
    password: SecretStr | None = None

    _url = field_validator("url")(classmethod(lambda cls, v: check_bmc_url(v)))


class NodeCreate(_In):
    model_config = _example({"hostname": "gpu01", "mac": "02:00:00:00:00:01", "tags": ["rack1"],
                             "facts": {"rack": "r1"}, "vars": {"admin_user": "ops"}})
    hostname: str
    mac: str
    ip: str | None = None
    profile: str | None = None
    role: str | None = None
    state: Literal["enrolled", "discovered"] | None = Field(default=None, description="default: enrolled")
    tags: list[str] = []
    interfaces: list[InterfaceIn] = Field(default=[], description="extra interfaces beyond the primary MAC")
    bmc: BmcIn | None = None
    facts: dict[str, Any] = {}
    vars: dict[str, Any] = {}

    _hostname = field_validator("hostname")(classmethod(lambda cls, v: check_hostname(v)))
    _mac = field_validator("mac")(classmethod(lambda cls, v: canonical_mac(v)))
    _ip = field_validator("ip")(classmethod(lambda cls, v: check_ip(v)))
    _facts = field_validator("facts")(classmethod(lambda cls, v: check_facts(v)))
    _vars = field_validator("vars")(classmethod(lambda cls, v: check_document(v)))

    @field_validator("tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        for t in v:
            if not TAG_RE.match(t):
                raise ValueError(f"{t!r} is not a valid tag")
        return sorted(set(v))


class NodeUpdate(_In):
    """A partial update: only the fields present change; `null` clears a nullable field."""

    model_config = _example({"tags": ["rack1", "a100"], "vars": {"admin_user": "ops"}})

    hostname: str | None = None
    mac: str | None = None
    ip: str | None = None
    profile: str | None = None
    role: str | None = None
    tags: list[str] | None = None
    interfaces: list[InterfaceIn] | None = None
    bmc: BmcIn | None = None
    facts: dict[str, Any] | None = None
    vars: dict[str, Any] | None = None

    _hostname = field_validator("hostname")(classmethod(lambda cls, v: None if v is None else check_hostname(v)))
    _mac = field_validator("mac")(classmethod(lambda cls, v: None if v is None else canonical_mac(v)))
    _ip = field_validator("ip")(classmethod(lambda cls, v: check_ip(v)))
    _tags = field_validator("tags")(classmethod(lambda cls, v: None if v is None else NodeCreate._tags(v)))
    _facts = field_validator("facts")(classmethod(lambda cls, v: check_facts(v)))
    _vars = field_validator("vars")(classmethod(lambda cls, v: check_document(v)))


class EnrollIn(_In):
    """`POST /api/v1/nodes/{ref}/enroll`: what a discovered node becomes."""

    model_config = _example({"profile": "ubuntu-gpu", "hostname": "gpu02", "tags": ["rack1"]})

    profile: str = Field(description="the profile it installs (e.g. an `image/deploy` profile)")
    hostname: str | None = Field(default=None, description="rename it (discovered nodes are node-<mac>)")
    role: str | None = Field(default=None, description="default: the profile's role")
    ip: str | None = Field(default=None, description="a reserved address in one of the subnets")
    tags: list[str] | None = None

    _hostname = field_validator("hostname")(classmethod(lambda cls, v: None if v is None else check_hostname(v)))


class BmcOut(BaseModel):
    url: str | None
    username: str | None
    password_set: bool


class InterfaceOut(BaseModel):
    mac: str
    name: str | None


class NodeOut(BaseModel):
    model_config = _example(NODE_EXAMPLE)
    id: int
    hostname: str
    mac: str | None
    ip: str | None
    profile: str | None
    role: str | None
    state: str
    tags: list[str]
    interfaces: list[InterfaceOut]
    bmc: BmcOut
    facts: dict[str, Any]
    vars: dict[str, Any]
    state_changed_at: datetime
    created_at: datetime
    updated_at: datetime


class NodePage(BaseModel):
    model_config = _example({"items": [NODE_EXAMPLE], "total": 1, "limit": 100, "offset": 0})
    items: list[NodeOut]
    total: int
    limit: int
    offset: int


MAX_BULK = 5000  # nodes per bulk request (and 1 MiB of body by default: api.max_body_bytes)


class NodeBulkIn(_In):
    """Many nodes to enroll at once: all of them or none (docs/api.md, "Bulk enroll")."""

    model_config = _example({"nodes": [{"hostname": "gpu01", "mac": "02:00:00:00:00:01", "tags": ["rack1"]},
                                       {"hostname": "gpu02", "mac": "02:00:00:00:00:02", "tags": ["rack1"]}]})
    nodes: list[NodeCreate] = Field(min_length=1, max_length=MAX_BULK)


class NodeBrief(BaseModel):
    id: int
    hostname: str
    mac: str
    profile: str | None
    state: str


class NodeBulkOut(BaseModel):
    model_config = _example({"created": 2, "nodes": [
        {"id": 1, "hostname": "gpu01", "mac": "02:00:00:00:00:01", "profile": None, "state": "enrolled"},
        {"id": 2, "hostname": "gpu02", "mac": "02:00:00:00:00:02", "profile": None, "state": "enrolled"}]})
    created: int
    nodes: list[NodeBrief]


class CallbackOut(BaseModel):
    """The reply to an installer callback (`POST /boot/n/{token}/events`)."""

    state: str  # the node's state after the callback
    changed: bool  # the callback moved the node (false for a replay or a progress note)
    logged: bool  # an event row was written (progress is aggregated, see nodes/callbacks.py)
    bootstrap: str | None = None  # set when the install finished: how the node is handed to its role


class BootstrapDoneOut(BaseModel):
    """The reply to a bootstrap report (`POST /boot/n/{token}/bootstrap/done`)."""

    node: str
    state: str


# -- power and boot through the BMC (dgxie.nodes.power) ---------------------------------------

class PowerStatusOut(BaseModel):
    model_config = _example({"node": "gpu01", "power": "on"})
    node: str
    power: PowerState


class PowerOut(BaseModel):
    """A power action done: the state read back right after (it may still be changing)."""

    model_config = _example({"node": "gpu01", "action": "cycle", "power": "on"})

    node: str
    action: PowerAction
    power: PowerState


class BootOut(BaseModel):
    """The device set for the next boot only."""

    model_config = _example({"node": "gpu01", "boot": "pxe"})

    node: str
    boot: BootDevice


class PxeCycleOut(BaseModel):
    """PXE set for the next boot, then a power cycle (an off machine is started): what a reprovision
    or an erase asks of the node's BMC. `ok` false: `error` (one line) names the step that failed
    (`PXE once` or `power cycle`) and why, `error_kind` is the BMC error kind; the failure is also
    the event `node.pxe_cycle.failed`."""

    model_config = _example({"node": "gpu01", "ok": True, "boot": "pxe", "power": "on", "error": None,
                             "error_kind": None},
                            {"node": "gpu01", "ok": False, "boot": "pxe", "power": None,
                             "error": "gpu01: power cycle failed: BMC timeout: https://10.0.1.21/redfish/v1/Systems/1"
                                      "/Actions/ComputerSystem.Reset: timed out", "error_kind": "timeout"})
    node: str
    ok: bool = True
    boot: BootDevice | None  # "pxe" once it was set for the next boot
    power: PowerState | None  # the state read back after the cycle (null when it failed)
    error: str | None = None
    error_kind: str | None = None


class ReprovisionOut(NodeOut):
    """The node after a reprovision or an erase (committed whatever its BMC did), and what its
    BMC did: `power_cycle` is null when the node has no BMC (nothing was tried), else its result."""

    model_config = _example(NODE_EXAMPLE | {"state": "enrolled", "power_cycle": {
        "node": "gpu01", "ok": False, "boot": "pxe", "power": None, "error_kind": "auth",
        "error": "gpu01: power cycle failed: BMC auth: https://10.0.1.21: credentials rejected"}})
    power_cycle: PxeCycleOut | None = None
