"""The CLI's start-up cost, side by side with the interpreter's own (issue 14).

    .venv/bin/python bench/cli/bench_cli.py [--nodes 1000] [--runs 7]

SQLite in a temporary directory, N nodes with roles in state `ready` (bulk-inserted); every command
is a fresh process, timed as the median of --runs runs (wall clock). The baseline is what any
Python CLI pays before its first line of its own: `python -c pass` with the same interpreter and
site-packages. Prints a markdown table and the load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

from dgxie import db
from dgxie.compose import build_context
from dgxie.config import Settings
from dgxie.nodes import bulk
from dgxie.nodes.schemas import NodeCreate

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "handoff"))
from bench_inventory import FACTS, timed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cli-bench-"))
    url = f"sqlite:///{tmp}/d.db"
    cfg = tmp / "dgxie.yaml"
    cfg.write_text(f"database_url: {url}\ndata_dir: {tmp}/data\n")
    db.upgrade(url)
    ctx = build_context(Settings(database_url=url, data_dir=tmp / "data"), migrate=False)
    rows = [bulk.Row(str(i), NodeCreate(hostname=f"gpu{i:05d}", mac=f"02:00:00:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:"
                                                                       f"{i & 255:02x}",
                                        ip=f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255 or 1}" if i % 256 else None,
                                        role="k8s-worker" if i % 4 else "slurmd", tags=["rack1"], facts=FACTS))
            for i in range(args.nodes)]
    with db.session_scope(ctx.sessions) as s:
        bulk.create_nodes(s, ctx.site, rows, actor="bench")
        s.execute(db.text("UPDATE nodes SET state = 'ready'"))
    ctx.engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DGXIE_")} | {"DGXIE_CONFIG": str(cfg)}
    dgxie = str(Path(sys.executable).parent / "dgxie")
    cases = [("dgxie --help", [dgxie, "--help"]),
             ("dgxie node list --limit 100", [dgxie, "node", "list", "--limit", "100"]),
             (f"dgxie node list (all {args.nodes})", [dgxie, "node", "list", "--limit", "1000"]),
             ("dgxie node show gpu00007", [dgxie, "node", "show", "gpu00007"]),
             ("dgxie inventory ansible --list", [dgxie, "inventory", "ansible", "--list"])]
    print(f"nodes={args.nodes}, median of {args.runs}, load average before {os.getloadavg()}")
    print("| command | wall s | x python -c pass |\n|---|---|---|")
    base = timed([sys.executable, "-c", "pass"], env, args.runs)
    print(f"| `python -c pass` (the baseline) | {base:.3f} | 1.0 |")
    for name, argv in cases:
        t = timed(argv, env, args.runs)
        print(f"| `{name}` | {t:.3f} | {t / base:.1f} |")
    print(f"load average after {os.getloadavg()}")


if __name__ == "__main__":
    main()
