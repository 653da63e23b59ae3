"""One parser per facts bundle member (pure): text in, plain values out, never an exception.

Each takes the member's text (decoded by `facts.parse_bundle`) and returns what it could read; a
line or record it does not understand is skipped. Formats: docs/deploy.md's bundle table.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any

from dgxie.agent.schemas import Disk, Nic, PciDevice, PciKind

# Values firmware vendors leave in DMI fields that say nothing.
_DMI_BLANK = {"", "not specified", "to be filled by o.e.m.", "to be filled by o.e.m", "default string",
              "none", "not present", "not available", "not settable", "system serial number",
              "chassis serial number", "base board serial number", "0", "0123456789", "n/a", "unknown"}
_HANDLE = re.compile(r"^Handle 0x[0-9A-Fa-f]+, DMI type (\d+),")
_SIZE = re.compile(r"^(\d+)\s*(bytes|kB|KB|MB|GB|TB)$")
_SIZE_MIB = {"bytes": 1 / (1 << 20), "kB": 1 / 1024, "KB": 1 / 1024, "MB": 1, "GB": 1024, "TB": 1 << 20}
_LSPCI_NAME = re.compile(r"^(.*?)\s*\[([0-9a-fA-F]{4})\]$")
_BLOCK_SKIP = ("loop", "ram", "zram", "sr")


def key_values(text: str, sep: str = "=") -> dict[str, str]:
    """`key=value` lines (agent.txt); later keys win, blank keys are skipped."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, found, value = line.partition(sep)
        if found and key.strip():
            out[key.strip()] = value.strip()
    return out


def dmi_records(text: str) -> list[tuple[int, dict[str, str]]]:
    """`dmidecode` output as (DMI type, {field: value}) per record; list-valued fields are skipped."""
    records: list[tuple[int, dict[str, str]]] = []
    fields: dict[str, str] | None = None
    for line in text.splitlines():
        if (m := _HANDLE.match(line)) is not None:
            fields = {}
            records.append((int(m[1]), fields))
        elif fields is not None and line.startswith("\t") and not line.startswith("\t\t"):
            key, found, value = line[1:].partition(":")
            if found and value.strip():
                fields[key.strip()] = value.strip()
    return records


def dmi_value(value: str | None) -> str | None:
    """A DMI string, or None for the placeholders vendors leave (`Not Specified`, `To Be Filled By O.E.M.`)."""
    if value is None or value.strip().lower() in _DMI_BLANK:
        return None
    return value.strip()


def dmi_uuid(value: str | None) -> str | None:
    """A type 1 UUID in lower case, or None when unset (all 0 or all F) or a placeholder."""
    v = dmi_value(value)
    if v is None or set(v.replace("-", "").upper()) <= {"0"} or set(v.replace("-", "").upper()) <= {"F"}:
        return None
    return v.lower()


def dmi_memory_mib(records: list[tuple[int, dict[str, str]]]) -> int | None:
    """Sum of the type 17 (Memory Device) sizes in MiB, None when no module reports a size."""
    total, seen = 0.0, False
    for dmi_type, fields in records:
        m = _SIZE.match(fields.get("Size", "")) if dmi_type == 17 else None
        if m is not None:
            total += int(m[1]) * _SIZE_MIB[m[2]]
            seen = True
    return int(total) if seen else None


def cpuinfo(text: str) -> dict[str, Any]:
    """cpus (logical), sockets, cores_per_socket, threads_per_core and cpu_model from /proc/cpuinfo.

    x86 lists `physical id`, `core id`, `siblings` and `cpu cores` per processor; where those are
    missing (arm64) only `cpus` (and `model name` if present) are known."""
    blocks = [key_values(b, ":") for b in re.split(r"\n\s*\n", text) if b.strip()]
    procs = [b for b in blocks if b.get("processor", "").isdigit()]
    out: dict[str, Any] = {"cpus": len(procs) or None, "cpu_model": None, "sockets": None,
                           "cores_per_socket": None, "threads_per_core": None}
    if not procs:
        return out
    out["cpu_model"] = next((p[k] for p in procs for k in ("model name", "Processor") if p.get(k)), None)
    sockets = {p["physical id"] for p in procs if "physical id" in p}
    cores = {(p.get("physical id"), p["core id"]) for p in procs if "core id" in p}
    if sockets and all("core id" in p and "physical id" in p for p in procs):
        out["sockets"] = len(sockets)
        if len(cores) % len(sockets) == 0:
            out["cores_per_socket"] = len(cores) // len(sockets)
        if len(procs) % len(cores) == 0:
            out["threads_per_core"] = len(procs) // len(cores)
    return out


def meminfo_mib(text: str) -> int | None:
    """MemTotal in MiB (what the kernel can use, below the installed size)."""
    m = re.search(r"^MemTotal:\s+(\d+)\s*kB", text, re.M)
    return int(m[1]) // 1024 if m else None


def _flag(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, str)) and str(v).strip() in ("0", "1"):
        return str(v).strip() == "1"
    return None


def _text(v: Any) -> str | None:
    return v.strip() or None if isinstance(v, str) else None


def lsblk(text: str, by_path: dict[str, str | None], serials: dict[str, str] | None = None) -> list[Disk]:
    """Whole disks from `lsblk -J -b -d -o NAME,PATH,SIZE,...`; sizes may be numbers or strings
    (older util-linux), flags booleans or "0"/"1". lsblk takes serials from udev, which the agent
    does not run: `serials` (from sysfs, `block-serial.txt`) fill the ones it left empty."""
    try:
        devices = json.loads(text).get("blockdevices")
    except (ValueError, AttributeError):
        return []
    disks = []
    for d in devices if isinstance(devices, list) else []:
        if not isinstance(d, dict) or d.get("type") != "disk" or not isinstance(d.get("name"), str):
            continue
        name = d["name"].strip()
        size = d.get("size")
        if not name or name.startswith(_BLOCK_SKIP) or not str(size).strip().isdigit():
            continue
        disks.append(Disk(name=name, path=_text(d.get("path")) or f"/dev/{name}", size=int(str(size).strip()),
                          model=_text(d.get("model")), serial=_text(d.get("serial")) or (serials or {}).get(name),
                          rotational=_flag(d.get("rota")), removable=_flag(d.get("rm")) or False,
                          transport=_text(d.get("tran")), wwn=_text(d.get("wwn")), hctl=_text(d.get("hctl")),
                          by_path=by_path.get(name)))
    return disks


def tab_lines(text: str, columns: int) -> list[list[str | None]]:
    """Tab-separated lines with at least `columns` fields; `-` and empty fields become None."""
    rows = []
    for line in text.splitlines():
        cells = line.split("\t")
        if len(cells) >= columns and cells[0].strip():
            rows.append([None if c.strip() in ("", "-") else c.strip() for c in cells])
    return rows


def nics(text: str) -> list[Nic]:
    """`NAME MAC DRIVER SPEED CARRIER OPERSTATE` per line (net.txt)."""
    out = []
    for name, mac, driver, speed, carrier, *rest in tab_lines(text, 5):
        mbps = int(speed) if speed is not None and speed.isdigit() and int(speed) > 0 else None
        out.append(Nic(name=str(name), mac=mac.lower() if mac else None, driver=driver, speed_mbps=mbps,
                       link=carrier == "1", operstate=rest[0] if rest else None))
    return out


def _pci_kind(vendor_id: str | None, class_id: str | None) -> PciKind | None:
    if vendor_id == "10de" and class_id in ("0300", "0302"):
        return "gpu"
    if vendor_id == "10de" and class_id == "0680":
        return "nvswitch"
    return "nic" if class_id in ("0200", "0207") else None


def lspci(text: str) -> list[PciDevice]:
    """`lspci -vmmnn -D` records (blank-line separated `Key:<TAB>Name [id]` lines); a name lspci did
    not know (printed as `Device [2335]`) is None."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        fields = key_values(block, ":")
        slot = fields.get("Slot")
        if not slot:
            continue
        named: dict[str, tuple[str | None, str | None]] = {}
        for key in ("Class", "Vendor", "Device", "SVendor", "SDevice"):
            m = _LSPCI_NAME.match(fields.get(key, ""))
            name = m[1] if m else fields.get(key)
            named[key] = (None if name in ("", "Device") else name, m[2].lower() if m else None)
        out.append(PciDevice(slot=slot, class_id=named["Class"][1], class_=named["Class"][0],
                             vendor_id=named["Vendor"][1], vendor=named["Vendor"][0],
                             device_id=named["Device"][1], device=named["Device"][0],
                             subsystem_vendor_id=named["SVendor"][1], subsystem_id=named["SDevice"][1],
                             kind=_pci_kind(named["Vendor"][1], named["Class"][1])))
    return out


def ipmi_lan(text: str) -> tuple[str | None, str | None]:
    """(BMC IPv4, BMC MAC) from `ipmitool lan print`; 0.0.0.0 and 00:00:00:00:00:00 count as unset."""
    fields = key_values(text, ":")
    try:
        ip: ipaddress.IPv4Address | None = ipaddress.IPv4Address(fields.get("IP Address", ""))
    except ValueError:
        ip = None
    mac = fields.get("MAC Address", "").lower()
    if not re.fullmatch(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}", mac) or mac == "00:00:00:00:00:00":
        mac = ""
    return (str(ip) if ip and int(ip) else None), mac or None
