"""System facts from Redfish ComputerSystem resources (pure): what Slurm/Ansible host vars need."""

from __future__ import annotations

from typing import Any


def _gpu(proc: dict[str, Any]) -> bool:
    ptype = str(proc.get("ProcessorType") or "")
    ident = str(proc.get("Id") or proc.get("@odata.id") or "")
    return ptype == "GPU" or (not ptype and "GPU" in ident.rsplit("/", 1)[-1].upper())


def _int(v: Any) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def system_facts(systems: list[dict[str, Any]], processors: list[dict[str, Any]]) -> dict[str, Any]:
    """A plain dict of facts. `systems`: every ComputerSystem (the host is the one with a Model,
    else the first); `processors`: every Processors member seen (expanded docs or bare links).

    Keys: model, manufacturer, serial, sockets, cores_per_socket, threads_per_core, cpus,
    memory_mib, gpus, gpu_model (None where the BMC does not say).
    """
    host = next((s for s in systems if s.get("Model")), systems[0] if systems else {})
    ps = host.get("ProcessorSummary") or {}
    ms = host.get("MemorySummary") or {}
    sockets = _int(ps.get("Count"))
    cores = _int(ps.get("CoreCount"))
    threads = _int(ps.get("LogicalProcessorCount"))
    cpus_docs = [p for p in processors if str(p.get("ProcessorType") or "") == "CPU"]
    if cores is None and cpus_docs and all(_int(p.get("TotalCores")) for p in cpus_docs):
        cores = sum(int(p["TotalCores"]) for p in cpus_docs)
    if threads is None and cpus_docs and all(_int(p.get("TotalThreads")) for p in cpus_docs):
        threads = sum(int(p["TotalThreads"]) for p in cpus_docs)
    gib = ms.get("TotalSystemMemoryGiB")
    gpus = [p for p in processors if _gpu(p)]
    models = sorted({str(p["Model"]) for p in gpus if p.get("Model")})
    return {
        "model": host.get("Model"),
        "manufacturer": host.get("Manufacturer"),
        "serial": host.get("SerialNumber"),
        "sockets": sockets,
        "cores_per_socket": cores // sockets if cores and sockets else None,
        "threads_per_core": threads // cores if threads and cores else None,
        "cpus": threads if threads is not None else cores,
        "memory_mib": int(gib * 1024) if isinstance(gib, (int, float)) and not isinstance(gib, bool) else None,
        "gpus": len(gpus),
        "gpu_model": models[0] if len(models) == 1 else (", ".join(models) if models else None),
    }
