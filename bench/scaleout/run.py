"""Several dgxie instances on one PostgreSQL, one killed with SIGKILL, at the issue's size.

    sudo .venv/bin/python bench/scaleout/run.py [--dhcp-clients 2000] [--api-clients 200]
        [--updates 12] [--nodes-per-update 10] [--seconds 40] [--kill-after 15] [--rate 200]
        [--work DIR] [--json out.json]

The scenario is tests/support/scaleout.py (the same one tests/e2e/test_scaleout_kill.py runs small):
three `dgxie serve` (api + the DHCP HA pair), perfdhcp clients, API clients enrolling and reading
nodes, firmware update jobs; the boot instance running one is SIGKILLed. Printed as JSON: API
writes acknowledged/lost and latency, DHCP duplicates and takeover, job takeover and executions,
the load average before and after. The servers' logs stay in --work (default: a new
/tmp/dgxie-scaleout-* directory). Exit 1 when a bound of the issue is broken.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.support import scaleout


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dhcp-clients", type=int, default=2000)
    p.add_argument("--api-clients", type=int, default=200)
    p.add_argument("--updates", type=int, default=12)
    p.add_argument("--nodes-per-update", type=int, default=10)
    p.add_argument("--seconds", type=float, default=40)
    p.add_argument("--kill-after", type=float, default=15)
    p.add_argument("--rate", type=int, default=200)
    p.add_argument("--work", type=Path)
    p.add_argument("--json", type=Path)
    a = p.parse_args()
    size = scaleout.Size(dhcp_clients=a.dhcp_clients, api_clients=a.api_clients, updates=a.updates,
                         nodes_per_update=a.nodes_per_update,
                         load_seconds=a.seconds, kill_after=a.kill_after, rate=a.rate)
    load_before = os.getloadavg()
    work = a.work or Path(tempfile.mkdtemp(prefix="dgxie-scaleout-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"bench-scaleout: logs in {work}", file=sys.stderr)
    fig = scaleout.run(work, size)
    fig["loadavg_before"], fig["loadavg_after"] = load_before, os.getloadavg()
    out = json.dumps(fig, indent=2)
    print(out)
    if a.json:
        a.json.write_text(out)
    try:
        scaleout.check(fig)
    except AssertionError as exc:
        print(f"bench-scaleout: a bound is broken: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
