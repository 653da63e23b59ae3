"""The agent's raw facts bundle -> typed `Facts`, and the flat summary the inventories use (pure).

    members = read_tar(body, max_bytes=...)     # Invalid / TooLarge: the only errors
    facts = parse_bundle(members)               # never raises: what is missing or garbled is None
    node.facts["commissioning"] = commissioning_facts(facts)

Where each fact comes from (docs/deploy.md, the bundle table):

- `agent_version`, `kernel`, `boot_mode`, `boot_mac`: agent.txt (`version`, `kernel`, `boot_mode`, `mac`).
- `manufacturer`, `model`, `serial`, `uuid`, `bios_version`: dmidecode types 1 and 0; `serial` falls
  back to the chassis (type 3), then baseboard (type 2) serial when the system's is a placeholder
  (`Not Specified`, `To Be Filled By O.E.M.`, ...); `chassis_serial`, `baseboard_serial` as read.
- `cpus`, `sockets`, `cores_per_socket`, `threads_per_core`, `cpu_model`: cpuinfo.txt; where it has
  no topology (arm64), sockets and cores come from dmidecode type 4 (populated sockets, Core Count).
- `memory_mib`: MemTotal (meminfo.txt); `memory_installed_mib`: the type 17 module sizes.
- `disks`: lsblk.json (whole disks only), `by_path` from block-sysfs.txt (bypath.py).
- `nics`: net.txt. `pci`, `gpus`, `gpu_model`, `nvswitches`: lspci.txt (NVIDIA class 0300/0302 is
  a GPU, NVIDIA 0680 an NVSwitch, 0200/0207 a NIC); None without lspci.txt, 0 when it lists none.
  `gpu_model` is lspci's name of the first GPU, None when its pci.ids does not know the device
  (Debian 12's does not know the H200 or the H100's NVSwitch): the BMC's name then stays in the
  inventory, and `pci` still has the ids.
- `bmc_ip`, `bmc_mac`: ipmi-lan.txt (0.0.0.0 is unset).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dgxie.agent import parse
from dgxie.agent.bundle import MEMBERS, read_tar
from dgxie.agent.bypath import by_paths
from dgxie.agent.schemas import Disk, Facts, Nic, PciDevice

__all__ = ["MEMBERS", "SUMMARY_KEYS", "Disk", "Facts", "Nic", "PciDevice", "commissioning_facts", "parse_bundle",
           "read_tar", "summary"]

# The flat keys the inventories read (dgxie.handoff.records.FACT_KEYS; a test keeps them equal).
SUMMARY_KEYS = ("cpus", "sockets", "cores_per_socket", "threads_per_core", "memory_mib", "gpus", "gpu_model",
                "model", "manufacturer", "serial")
Section = Callable[[dict[str, bytes]], dict[str, Any]]


def _safe(section: Section, members: dict[str, bytes]) -> dict[str, Any]:
    """The parsers skip what they do not understand; this is the net under them, so one odd member
    can never cost the others (the bundle comes from a machine we are still learning about). A
    section whose values would not validate as `Facts` fields is dropped the same way."""
    try:
        fields = section(members)
        Facts.model_validate(fields)
        return fields
    except Exception:
        return {}


def _text(members: dict[str, bytes], name: str) -> str:
    return members.get(name, b"").decode("utf-8", errors="replace")


def _agent(members: dict[str, bytes]) -> dict[str, Any]:
    kv = parse.key_values(_text(members, "agent.txt"))
    mode = kv.get("boot_mode", "").lower()
    return {"agent_version": kv.get("version") or None, "kernel": kv.get("kernel") or None,
            "boot_mode": mode if mode in ("uefi", "bios") else None, "boot_mac": kv.get("mac", "").lower() or None}


def _dmi(members: dict[str, bytes]) -> dict[str, Any]:
    records = parse.dmi_records(_text(members, "dmidecode.txt"))

    def first(dmi_type: int, key: str) -> str | None:
        return next((v for t, f in records if t == dmi_type and (v := parse.dmi_value(f.get(key)))), None)

    cpus = [f for t, f in records if t == 4 and f.get("Status", "").startswith("Populated")]
    cores = [int(f["Core Count"]) for f in cpus if f.get("Core Count", "").isdigit()]
    chassis, board = first(3, "Serial Number"), first(2, "Serial Number")
    return {"manufacturer": first(1, "Manufacturer"), "model": first(1, "Product Name"),
            "serial": first(1, "Serial Number") or chassis or board,
            "uuid": next((u for t, f in records if t == 1 and (u := parse.dmi_uuid(f.get("UUID")))), None),
            "chassis_serial": chassis, "baseboard_serial": board, "bios_version": first(0, "Version"),
            "dmi_sockets": len(cpus) or None,
            "dmi_cores": cores[0] if cores and len(set(cores)) == 1 and len(cores) == len(cpus) else None,
            "dmi_cpu_model": parse.dmi_value(cpus[0].get("Version")) if cpus else None,
            "memory_installed_mib": parse.dmi_memory_mib(records)}


def _cpu(members: dict[str, bytes]) -> dict[str, Any]:
    cpu = parse.cpuinfo(_text(members, "cpuinfo.txt"))
    if cpu["sockets"] is None or cpu["cpu_model"] is None:
        dmi = _safe(_dmi, members)
        sockets, cores, cpus = dmi.get("dmi_sockets"), dmi.get("dmi_cores"), cpu["cpus"]
        if cpu["sockets"] is None and sockets:
            cpu["sockets"], cpu["cores_per_socket"] = sockets, cores
            if cores and cpus and cpus % (sockets * cores) == 0:
                cpu["threads_per_core"] = cpus // (sockets * cores)
        cpu["cpu_model"] = cpu["cpu_model"] or dmi.get("dmi_cpu_model")
    return cpu


def _system(members: dict[str, bytes]) -> dict[str, Any]:
    return {k: v for k, v in _dmi(members).items() if not k.startswith("dmi_")}


def _memory(members: dict[str, bytes]) -> dict[str, Any]:
    return {"memory_mib": parse.meminfo_mib(_text(members, "meminfo.txt"))}


def _devices(members: dict[str, bytes]) -> dict[str, Any]:
    return {"nics": tuple(parse.nics(_text(members, "net.txt")))}


def _bmc(members: dict[str, bytes]) -> dict[str, Any]:
    ip, mac = parse.ipmi_lan(_text(members, "ipmi-lan.txt"))
    return {"bmc_ip": ip, "bmc_mac": mac}


def _pci(members: dict[str, bytes]) -> dict[str, Any]:
    if "lspci.txt" not in members:
        return {"pci": (), "gpus": None, "gpu_model": None, "nvswitches": None}
    devices = parse.lspci(_text(members, "lspci.txt"))
    gpus = [d for d in devices if d.kind == "gpu"]
    return {"pci": tuple(devices), "gpus": len(gpus), "nvswitches": sum(d.kind == "nvswitch" for d in devices),
            "gpu_model": gpus[0].device if gpus else None}


def _disks(members: dict[str, bytes]) -> dict[str, Any]:
    rows = parse.tab_lines(_text(members, "block-sysfs.txt"), 2)
    paths = by_paths({str(r[0]): r[1] for r in rows if r[1]})
    serials = {str(r[0]): str(r[1]).strip() for r in parse.tab_lines(_text(members, "block-serial.txt"), 2)
               if r[1] and str(r[1]).strip()}
    return {"disks": tuple(parse.lsblk(_text(members, "lsblk.json"), paths, serials))}


SECTIONS: tuple[Section, ...] = (_agent, _system, _cpu, _memory, _disks, _devices, _pci, _bmc)


def parse_bundle(members: dict[str, bytes]) -> Facts:
    """Typed facts from the bundle members (names as `read_tar` returns them); never raises: a missing
    or garbled member leaves its facts None (or its lists empty)."""
    fields: dict[str, Any] = {}
    for section in SECTIONS:
        fields.update(_safe(section, members))
    return Facts(**fields)


def summary(facts: Facts) -> dict[str, Any]:
    """The flat inventory facts (SUMMARY_KEYS, each present; None where unknown)."""
    return {key: getattr(facts, key) for key in SUMMARY_KEYS}


def commissioning_facts(facts: Facts) -> dict[str, Any]:
    """What the agent service stores in `node.facts["commissioning"]`: the summary keys at the top
    (read by `dgxie.handoff.records.flat_facts`, between the BMC scan and the API-set facts) and the
    whole `Facts.to_json()` under `"detail"` (read back with `Facts.model_validate`)."""
    return {**summary(facts), "detail": facts.to_json()}
