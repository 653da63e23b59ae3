"""slurm.conf / gres.conf rendering, field by field in the format `slurmd -C` prints (pure).

The same lines are also loaded by a real slurmctld in tests/integration/test_handoff_slurmctld.py.
"""

from __future__ import annotations

import pytest

from dgxie.handoff import slurm
from dgxie.handoff.records import NodeRecord

# `slurmd -C` on this machine: NodeName=vm CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=24105
NODE_KEYS = {"NodeName", "NodeAddr", "CPUs", "Sockets", "CoresPerSocket", "ThreadsPerCore", "RealMemory", "Gres",
             "State", "Boards", "SocketsPerBoard"}
FACTS = {"cpus": 224, "sockets": 2, "cores_per_socket": 56, "threads_per_core": 2, "memory_mib": 2097152,
         "gpus": 8, "gpu_model": "H100"}


def fields(line: str) -> dict[str, str]:
    out = {}
    for word in line.split():
        k, sep, v = word.partition("=")
        assert sep and v, f"{word!r} is not KEY=VALUE"
        assert k not in out
        out[k] = v
    return out


def recs() -> list[NodeRecord]:
    return [NodeRecord("gpu01", "10.0.2.1", "slurmd", "ready", ("slurm-node",), ("a100",), FACTS),
            NodeRecord("gpu02", "10.0.2.2", "slurmd", "ready", ("slurm-node",), ("a100", "ib"), {}),
            NodeRecord("cpu01", None, "slurm-cpu", "ready", ("slurm-node",), (), {"cpus": "64", "gpus": 0}),
            NodeRecord("mgmt01", "10.0.0.1", "k8s-control", "ready", ("kube_control_plane",), (), FACTS)]


def test_node_lines_have_slurmd_C_fields() -> None:
    cfg = slurm.render(recs())
    lines = [ln for ln in cfg.slurm_conf.splitlines() if ln.startswith("NodeName=")]
    assert [fields(ln)["NodeName"] for ln in lines] == ["cpu01", "gpu01", "gpu02"]  # mgmt01 is not a slurm-node
    f = fields(lines[1])
    assert set(f) <= NODE_KEYS
    assert f == {"NodeName": "gpu01", "NodeAddr": "10.0.2.1", "CPUs": "224", "Sockets": "2", "CoresPerSocket": "56",
                 "ThreadsPerCore": "2", "RealMemory": str(int(2097152 * 0.98)), "Gres": "gpu:8", "State": "UNKNOWN"}
    assert int(f["Sockets"]) * int(f["CoresPerSocket"]) * int(f["ThreadsPerCore"]) == int(f["CPUs"])
    assert "GresTypes=gpu" in cfg.slurm_conf.splitlines()


def test_node_without_facts_gets_a_comment_no_gres_and_a_warning() -> None:
    cfg = slurm.render(recs())
    lines = cfg.slurm_conf.splitlines()
    i = next(i for i, ln in enumerate(lines) if ln.startswith("NodeName=gpu02"))
    assert lines[i - 1].startswith("# gpu02: no hardware facts; no Gres")
    assert fields(lines[i]) == {"NodeName": "gpu02", "NodeAddr": "10.0.2.2", "State": "UNKNOWN"}
    assert "gpu02: no hardware facts; no Gres" in cfg.warnings
    # partial facts: only what is known, a string number is accepted, gpus=0 means no Gres but is not missing
    cpu = fields(next(ln for ln in lines if ln.startswith("NodeName=cpu01")))
    assert cpu == {"NodeName": "cpu01", "CPUs": "64", "State": "UNKNOWN"}
    assert any(w.startswith("cpu01: missing hardware facts sockets") and "no Gres" not in w for w in cfg.warnings)
    assert all("=" in w for ln in lines if not ln.startswith("#") for w in ln.split())


def test_gres_conf_and_partitions() -> None:
    cfg = slurm.render(recs())
    assert cfg.gres_conf.splitlines()[1:] == ["NodeName=gpu01 Name=gpu File=/dev/nvidia[0-7]"]
    parts = [fields(ln) for ln in cfg.slurm_conf.splitlines() if ln.startswith("PartitionName=")]
    assert [(p["PartitionName"], p["Nodes"], p["Default"]) for p in parts] == [
        ("slurm-cpu", "cpu01", "YES"), ("slurmd", "gpu01,gpu02", "NO")]
    by_tag = slurm.render(recs(), by="tag")
    assert [fields(ln)["PartitionName"] + ":" + fields(ln)["Nodes"] for ln in by_tag.slurm_conf.splitlines()
            if ln.startswith("PartitionName=")] == ["a100:gpu01,gpu02", "ib:gpu02"]


@pytest.mark.parametrize(("gpus", "files"), [(1, "/dev/nvidia0"), (4, "/dev/nvidia[0-3]")])
def test_gres_file_ranges(gpus: int, files: str) -> None:
    assert slurm.gres_line(NodeRecord("g", None, "r", "ready", facts={"gpus": gpus})) == f"NodeName=g Name=gpu File={files}"


def test_bad_fact_values_are_treated_as_missing() -> None:
    r = NodeRecord("g", None, "r", "ready", ("slurm-node",), facts={"cpus": -4, "gpus": "eight", "memory_mib": True})
    lines, warning = slurm.node_line(r)
    assert lines[-1] == "NodeName=g State=UNKNOWN" and warning is not None and "no Gres" in warning
    assert slurm.render([]).warnings == ["no node has a role in the slurm-node group"]


def test_facts_from_the_bmc_scan_feed_slurm() -> None:
    """`dgxie firmware scan` stores what Redfish said under facts["hardware"]; an admin's value wins."""
    from dgxie.handoff.records import NodeRecord, flat_facts

    facts = flat_facts({"hardware": {"cpus": 224, "sockets": 2, "cores_per_socket": 56, "threads_per_core": 2,
                                     "memory_mib": 2097152, "gpus": 8, "gpu_model": ""}, "gpus": 4})
    assert facts["gpus"] == 4 and facts["cpus"] == 224 and "gpu_model" not in facts and "hardware" not in facts
    rec = NodeRecord(hostname="dgx01", ip="10.0.0.11", role="slurmd", state="ready", facts=facts)
    assert rec.fact_int("memory_mib") == 2097152


def test_commissioning_facts_sit_between_the_bmc_and_the_api() -> None:
    """The agent's facts (facts["commissioning"]) win over the BMC scan's, an admin's win over both;
    the agent's empty values and its "detail" never reach the inventory."""
    from dgxie.agent.facts import commissioning_facts, parse_bundle
    from dgxie.handoff.records import flat_facts
    from tests.support.agent import members

    commissioning = commissioning_facts(parse_bundle(members("dgx-h200-constructed")))
    bmc = {"cpus": 224, "memory_mib": 2097152, "gpus": 8, "gpu_model": "H100 80GB HBM3", "model": "DGXH100",
           "serial": "1662923610124", "sockets": None}
    facts = flat_facts({"hardware": bmc, "commissioning": commissioning, "serial": "ASSET-7", "rack": "r12"})
    assert facts == {"cpus": 224, "sockets": 2, "cores_per_socket": 56, "threads_per_core": 2,
                     "memory_mib": 2063937,  # MemTotal from the agent, not the installed 2 TiB
                     "gpus": 8, "gpu_model": "H100 80GB HBM3",  # lspci had no name for it: the BMC's stays
                     "model": "DGXH100", "manufacturer": "NVIDIA", "serial": "ASSET-7", "rack": "r12"}
    assert flat_facts({"commissioning": {"gpus": 0, "detail": {"gpus": 0}}, "hardware": {"gpus": 8}}) == {"gpus": 0}
    assert flat_facts({"commissioning": "garbage", "hardware": None}) == {}
