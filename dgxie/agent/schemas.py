"""The commissioning facts as frozen pydantic models: what `parse_bundle` returns and what is stored.

`Facts.to_json()` is the JSON kept in `node.facts["commissioning"]["detail"]`; `Facts.model_validate`
reads it back (`PciDevice.class_` is `"class"` in JSON; unknown keys are ignored, so detail written
by a newer dgxie still loads). Field names are a contract like the API's: fields may be added, never
renamed. `None` means "not known" (the member was missing or unreadable), never zero.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PciKind = Literal["gpu", "nvswitch", "nic"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class Disk(_Frozen):
    """One whole disk (lsblk TYPE disk; no loop, ram, zram, sr). `size` in bytes; `by_path` is the
    /dev/disk/by-path/ name udev gives it (None when the sysfs path does not say, see bypath.py)."""

    name: str
    path: str
    size: int
    model: str | None = None
    serial: str | None = None
    rotational: bool | None = None
    removable: bool = False
    transport: str | None = None
    wwn: str | None = None
    hctl: str | None = None
    by_path: str | None = None


class Nic(_Frozen):
    """A network interface from sysfs (`net.txt`); `speed_mbps` None when unknown (no link, -1)."""

    name: str
    mac: str | None = None
    driver: str | None = None
    speed_mbps: int | None = None
    link: bool = False
    operstate: str | None = None


class PciDevice(_Frozen):
    """One `lspci -vmmnn -D` record; ids are 4 lower-case hex digits, names as lspci printed them."""

    slot: str
    class_id: str | None = None
    class_: str | None = Field(default=None, alias="class")
    vendor_id: str | None = None
    vendor: str | None = None
    device_id: str | None = None
    device: str | None = None
    subsystem_vendor_id: str | None = None
    subsystem_id: str | None = None
    kind: PciKind | None = None


class Facts(_Frozen):
    """Everything the agent's bundle said about one machine."""

    agent_version: str | None = None
    kernel: str | None = None
    boot_mode: Literal["uefi", "bios"] | None = None
    boot_mac: str | None = None
    manufacturer: str | None = None
    model: str | None = None
    serial: str | None = None
    uuid: str | None = None
    chassis_serial: str | None = None
    baseboard_serial: str | None = None
    bios_version: str | None = None
    cpus: int | None = None
    sockets: int | None = None
    cores_per_socket: int | None = None
    threads_per_core: int | None = None
    cpu_model: str | None = None
    memory_mib: int | None = None
    memory_installed_mib: int | None = None
    disks: tuple[Disk, ...] = ()
    nics: tuple[Nic, ...] = ()
    pci: tuple[PciDevice, ...] = ()
    gpus: int | None = None
    gpu_model: str | None = None
    nvswitches: int | None = None
    bmc_ip: str | None = None
    bmc_mac: str | None = None
