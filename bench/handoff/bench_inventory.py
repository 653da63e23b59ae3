"""Inventory of N nodes: dgxie's dynamic script vs Ansible's INI plugin on the equivalent static file.

    .venv/bin/python bench/handoff/bench_inventory.py [N]      (default 1000; SQLite in a temp dir)

Prints: the pure builder time, `dgxie inventory ansible --list` end to end, and `ansible-inventory --list`
through the dgxie script (running dgxie; then over HTTP from a running `dgxie serve`, `DGXIE_URL`) vs through the
static INI dgxie writes (the peer DeepOps uses by default), all in one run, with the ratios.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from dgxie import db
from dgxie.compose import build_context
from dgxie.config import Settings
from dgxie.handoff import ansible, service
from dgxie.models import Interface, Node
from tests.support.serve import served

ROLES = ["k8s-worker", "slurmd", "k8s-control", "slurm-controller"]
FACTS = {"cpus": 224, "sockets": 2, "cores_per_socket": 56, "threads_per_core": 2, "memory_mib": 2097152, "gpus": 8}


def timed(argv: list[str], env: dict[str, str], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    tmp = Path(tempfile.mkdtemp(prefix="handoff-bench-"))
    cfg = tmp / "dgxie.yaml"
    cfg.write_text(f"database_url: sqlite:///{tmp}/d.db\ndata_dir: {tmp}/data\n")
    ctx = build_context(Settings(database_url=f"sqlite:///{tmp}/d.db", data_dir=tmp / "data"))
    with db.session_scope(ctx.sessions) as s:
        for i in range(n):
            node = Node(hostname=f"node{i:05d}", ip=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
                        role=ROLES[i % 4] if i >= 4 else ROLES[i], state="ready", tags=[], facts=FACTS,
                        vars={}, boot_nonce=f"n{i}")
            node.interfaces = [Interface(mac=f"02:00:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}")]
            s.add(node)
    with db.session_scope(ctx.sessions) as s:
        recs = service.node_records(s, ctx.site)
    t0 = time.perf_counter()
    for _ in range(10):
        ansible.inventory_list(recs)
    pure = (time.perf_counter() - t0) / 10
    env = dict(os.environ, DGXIE_CONFIG=str(cfg))
    bindir = Path(sys.executable).parent
    script = tmp / "dgxie-inventory"
    script.write_text(f'#!/bin/sh\nexec {sys.executable} -m dgxie inventory ansible "$@"\n')
    script.chmod(0o755)
    ini = tmp / "inventory.ini"
    subprocess.run([sys.executable, "-m", "dgxie", "inventory", "ansible", "--ini", "-o", str(ini)], env=env,
                   check=True, capture_output=True)
    cli = timed([str(script), "--list"], env)
    dyn = timed([str(bindir / "ansible-inventory"), "-i", str(script), "--list"], env)
    static = timed([str(bindir / "ansible-inventory"), "-i", str(ini), "--list"], env)
    shipped = Path(__file__).resolve().parents[2] / "scripts" / "dgxie-inventory"
    (tmp / "srv").mkdir()
    with served(tmp / "srv", f"sqlite:///{tmp}/d.db") as srv:
        token = tmp / "token"
        token.write_text(srv.token + "\n")
        http_env = env | {"DGXIE_URL": srv.url, "DGXIE_TOKEN_FILE": str(token)}
        http_script = timed([str(shipped), "--list"], http_env)
        http_dyn = timed([str(bindir / "ansible-inventory"), "-i", str(shipped), "--list"], http_env)
    print(f"nodes={n}, load average {os.getloadavg()}")
    print(f"pure inventory_list:                            {pure * 1000:8.1f} ms")
    print(f"dgxie inventory ansible --list (process):       {cli * 1000:8.1f} ms")
    print(f"scripts/dgxie-inventory --list over HTTP:       {http_script * 1000:8.1f} ms")
    print(f"ansible-inventory -i dgxie-script --list:       {dyn * 1000:8.1f} ms  x{dyn / static:.2f} static")
    print(f"ansible-inventory -i dgxie-script (HTTP) --list:{http_dyn * 1000:8.1f} ms  x{http_dyn / static:.2f} static")
    print(f"ansible-inventory -i static.ini --list:         {static * 1000:8.1f} ms")


if __name__ == "__main__":
    main()
