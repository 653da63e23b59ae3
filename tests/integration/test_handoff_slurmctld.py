"""Real peer: Debian's slurmctld (22.05 has no `-t` test mode) loads dgxie's rendered node lines.

We start munged and slurmctld in the foreground on loopback (own key, socket, port and state dir),
then ask the controller with `scontrol show node -o` what it made of each line. Node addresses are
127.0.1.x so nothing leaves loopback. A deliberately broken line is refused (the check can fail).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dgxie.handoff import slurm
from dgxie.handoff.records import NodeRecord
from tests.support.handoff import FACTS_DGX
from tests.support.net import free_port

SLURMCTLD = shutil.which("slurmctld") or "/usr/sbin/slurmctld"
MUNGED = shutil.which("munged") or "/usr/sbin/munged"

NODES = [NodeRecord("gpu01", "127.0.1.1", "slurmd", "ready", ("slurm-node",), ("h100",), FACTS_DGX),
         NodeRecord("gpu02", "127.0.1.2", "slurmd", "ready", ("slurm-node",), ("h100",), {}),
         NodeRecord("cpu01", "127.0.1.3", "slurm-cpu", "ready", ("slurm-node",), (), {"cpus": 64, "gpus": 0})]


def header(d: Path, port: int) -> str:
    return "\n".join([
        "ClusterName=dgxietest", "SlurmctldHost=localhost", f"SlurmctldPort={port}", "SlurmUser=root",
        f"StateSaveLocation={d}/state", f"SlurmctldPidFile={d}/slurmctld.pid", f"SlurmctldLogFile={d}/slurmctld.log",
        "AuthType=auth/munge", f"AuthInfo=socket={d}/munge/sock", "CredType=cred/munge", "MailProg=/bin/true",
        "MpiDefault=none", "ReturnToService=1", ""])


@pytest.fixture
def slurm_dir(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        pytest.skip("slurmctld with SlurmUser=root needs root (CI runs as root)")
    d = tmp_path / "slurm"
    (d / "state").mkdir(parents=True)
    (d / "munge").mkdir(mode=0o711)
    key = d / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    m = d / "munge"
    munged = subprocess.Popen([MUNGED, "-F", "-f", f"--socket={m}/sock", f"--key-file={key}", f"--log-file={m}/log",
                               f"--pid-file={m}/pid", f"--seed-file={m}/seed"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while not (m / "sock").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert (m / "sock").exists(), "munged did not start"
        yield d
    finally:
        munged.terminate()
        munged.wait(timeout=20)


def test_slurmctld_loads_the_rendered_lines(slurm_dir: Path) -> None:
    cfg = slurm.render(NODES)
    port = free_port()
    conf = slurm_dir / "slurm.conf"
    conf.write_text(header(slurm_dir, port) + cfg.slurm_conf)
    (slurm_dir / "gres.conf").write_text(cfg.gres_conf)
    env = dict(os.environ, SLURM_CONF=str(conf))
    ctld = subprocess.Popen([SLURMCTLD, "-D", "-c", "-f", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, env=env)
    try:
        out = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert ctld.poll() is None, (slurm_dir / "slurmctld.log").read_text()
            p = subprocess.run(["scontrol", "show", "node", "-o"], env=env, capture_output=True, text=True,
                               timeout=30, check=False)
            if p.returncode == 0 and "gpu01" in p.stdout:
                out = p.stdout
                break
            time.sleep(0.5)
        nodes = {}
        for line in out.splitlines():
            f = dict(w.split("=", 1) for w in line.split() if "=" in w)
            nodes[f["NodeName"]] = f
        g = nodes["gpu01"]
        assert (g["CPUTot"], g["Sockets"], g["CoresPerSocket"], g["ThreadsPerCore"]) == ("224", "2", "56", "2")
        assert g["RealMemory"] == str(slurm.real_memory(FACTS_DGX["memory_mib"], 2.0)) and g["Gres"] == "gpu:8"
        assert g["NodeAddr"] == "127.0.1.1" and g["Partitions"] == "slurmd"
        assert nodes["gpu02"]["Gres"] == "(null)" and nodes["gpu02"]["CPUTot"] == "1"  # Slurm's defaults
        assert nodes["cpu01"]["CPUTot"] == "64" and nodes["cpu01"]["Partitions"] == "slurm-cpu"
        parts = subprocess.run(["scontrol", "show", "partition", "-o"], env=env, capture_output=True, text=True,
                               timeout=30, check=False).stdout
        assert "PartitionName=slurmd " in parts and "PartitionName=slurm-cpu " in parts
    finally:
        ctld.terminate()
        ctld.wait(timeout=30)


def test_slurmctld_refuses_a_broken_line(slurm_dir: Path) -> None:
    conf = slurm_dir / "slurm.conf"
    conf.write_text(header(slurm_dir, free_port()) + "NodeName=bad CPUs=lots State=UNKNOWN\n")
    p = subprocess.run([SLURMCTLD, "-D", "-c", "-f", str(conf)], capture_output=True, text=True, timeout=60,
                       check=False, env=dict(os.environ, SLURM_CONF=str(conf)))
    assert p.returncode != 0 and "Parse error" in p.stdout + p.stderr
