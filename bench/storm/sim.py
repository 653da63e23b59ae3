"""The storm simulator proper: N simulated nodes in one asyncio process, in the client namespace.

    ip netns exec stmcli python bench/storm/sim.py PLAN.json RESULT.json

PLAN: {"server": ip, "stack": "dgxie"|"peer", "start": "all"|"bmc", "deadline": s,
"nodes": [{"mac": .., "arch": 0|7}, ...]}. Each node does what firmware and an installer do:

  dhcp_pxe   DORA as a PXE ROM (options 93/94/97/60), tries 4/8/16/32 s, then it gives up
  tftp       the boot file named in the ACK, from its siaddr, blksize 1468 (RFC 2348), retransmits
  dhcp_ipxe  DORA again as iPXE (user class "iPXE"): the script URL
  script     GET the script from the node's leased address (${net0/mac} expanded)
  kernel     GET the kernel named by the script's `kernel` line   } iPXE: 5 tries, 503 +
  initrd     GET the initrd named by its `initrd` line            } Retry-After honoured
  seed       GET {base}user-data (base from `ds=nocloud-net;s=` or `dgxie.seed=`), the events URL in it
  callbacks  POST a progress event and the finished event to that URL (JSON, as dgxie's templates do)
  reboot     after `reboot_delay` s (default 3: no firmware POSTs faster; dgxie's script cache
             lives 2 s), DORA as iPXE + the script again: for dgxie it must now boot the local disk

With start "bmc" nodes stay off until their fake BMC (bmc.py) is told to power on; the simulator
prints "bmcs ready" and runs until every node is powered on and done (or, once the runner has
written RESULT.power-done, every node powered on so far), or the deadline passes. A node
that fails a phase stops there (it is counted under that phase). RESULT: one record per node, plus
the process's CPU time and peak RSS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bmc import FakeBmcs
from proto import Dhcp, fetch, pxe_options, tftp_get

PXE_TIMEOUTS = (4.0, 8.0, 16.0, 32.0)  # PXE spec / RFC 2131 backoff: 4 tries, ~60 s, then the ROM gives up
IPXE_TIMEOUTS = (1.0, 2.0, 4.0, 8.0, 10.0, 10.0)  # iPXE: DHCP_DISC_START 1 s doubling to 10 s
DEV = "stmv0c"


class Node:
    def __init__(self, i: int, spec: dict[str, Any], plan: dict[str, Any], dhcp: Dhcp) -> None:
        self.i, self.plan, self.dhcp = i, plan, dhcp
        self.mac = bytes.fromhex(spec["mac"].replace(":", ""))
        self.mac_s, self.arch = spec["mac"], int(spec["arch"])
        self.rec: dict[str, Any] = {"i": i, "mac": self.mac_s, "arch": self.arch, "phases": {}, "retries": {},
                                    "causes": {}, "failed": None, "error": None, "bytes": 0}

    async def phase(self, name: str, coro: Any) -> Any:
        t = time.monotonic()
        try:
            out = await coro
        except Exception as exc:  # every failure is recorded, under its phase
            self.rec["failed"], self.rec["error"] = name, f"{type(exc).__name__}: {exc}"[:300]
            raise
        self.rec["phases"][name] = round(time.monotonic() - t, 4)
        return out

    async def _dhcp(self, ipxe: bool, name: str) -> Any:
        offer, retries = await self.dhcp.exchange(self.mac, pxe_options(self.mac, self.arch, ipxe),
                                                  IPXE_TIMEOUTS if ipxe else PXE_TIMEOUTS)
        self.rec["retries"][name] = retries
        if offer is None:
            raise OSError("no lease (gave up)")
        return offer

    async def _get(self, src: str, url: str, name: str, **kw: Any) -> bytes:
        causes = self.rec["causes"].setdefault(name, {})
        body, n, retries = await fetch(src, url, causes=causes, **kw)
        self.rec["retries"][name] = self.rec["retries"].get(name, 0) + retries
        self.rec["bytes"] += n
        return body

    async def run(self) -> None:
        self.rec["on"] = time.monotonic()
        with contextlib.suppress(Exception):  # recorded by phase()
            await self._boot()
        self.rec["done"] = time.monotonic()

    async def _boot(self) -> None:
        offer = await self.phase("dhcp_pxe", self._dhcp(False, "dhcp_pxe"))
        ip = offer.ip
        self.rec["ip"] = ip

        async def tftp() -> None:
            size, retrans = await tftp_get(ip, offer.siaddr if offer.siaddr != "0.0.0.0" else self.plan["server"],
                                           offer.bootfile)
            self.rec["retries"]["tftp"], self.rec["tftp_bytes"] = retrans, size

        await self.phase("tftp", tftp())
        offer = await self.phase("dhcp_ipxe", self._dhcp(True, "dhcp_ipxe"))
        ip = offer.ip
        url = offer.bootfile.replace("${net0/mac}", self.mac_s)
        script = (await self.phase("script", self._get(ip, url, "script"))).decode(errors="replace")
        kernel = re.search(r"^\s*kernel\s+(?:--\S+\s+)*(http://\S+)(.*)$", script, re.M)
        initrd = re.search(r"^\s*initrd\s+(?:--\S+\s+)*(http://\S+)", script, re.M)
        if kernel is None or initrd is None:
            self.rec["failed"], self.rec["error"] = "script", f"no kernel/initrd in the script: {script[:200]!r}"
            return
        await self.phase("kernel", self._get(ip, kernel.group(1), "kernel"))
        await self.phase("initrd", self._get(ip, initrd.group(1), "initrd"))
        base = re.search(r"(?:ds=nocloud-net;s=|dgxie\.seed=)(\S+)", kernel.group(2))
        if base is None:
            self.rec["failed"], self.rec["error"] = "seed", "no seed URL on the kernel cmdline"
            return
        # cloud-init/subiquity retry a seed fetch; 403/404 until the lease is on the server's books
        ud = (await self.phase("seed", self._get(ip, base.group(1) + "user-data", "seed", tries=8,
                                                 retry_codes=(403, 404)))).decode(errors="replace")
        ev = re.search(r"^\s*endpoint:\s*\"?([^\"\s]+)", ud, re.M)
        if ev is None:
            self.rec["failed"], self.rec["error"] = "seed", "no events URL (endpoint:) in the user-data"
            return

        async def callbacks() -> None:
            for event in ({"event": "progress", "message": "storm-sim: curtin running"},
                          {"event": "finished", "message": "storm-sim: installed"}):
                answer = await self._get(ip, ev.group(1), "callbacks", method="POST", body=json.dumps(event).encode())
            self.rec["finished_answer"] = answer.decode(errors="replace")[:200]

        await self.phase("callbacks", callbacks())
        self.rec["installed"] = time.monotonic()
        await asyncio.sleep(self.plan.get("reboot_delay", 3.0))  # a reboot: firmware POST takes seconds at least
        await self.phase("reboot", self._reboot())

    async def _reboot(self) -> str:
        offer = await self._dhcp(True, "reboot")
        script = (await self._get(offer.ip, offer.bootfile.replace("${net0/mac}", self.mac_s), "reboot")).decode()
        local = not re.search(r"^\s*kernel\s", script, re.M)
        self.rec["reboot_local"] = local
        if not local and self.plan["stack"] == "dgxie":
            raise OSError(f"the script after install still boots the installer: {script[:300]!r}")
        return script


async def main(plan_path: str, out_path: str) -> None:
    plan = json.loads(Path(plan_path).read_text())
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    dhcp = Dhcp(DEV)
    nodes = [Node(i, spec, plan, dhcp) for i, spec in enumerate(plan["nodes"])]
    tasks: list[asyncio.Task[None]] = []
    t0 = time.monotonic()
    deadline = t0 + plan["deadline"]
    if plan["start"] == "bmc":
        bmcs = FakeBmcs(len(nodes), lambda i: tasks.append(asyncio.create_task(nodes[i].run())))
        server = await bmcs.serve()
        print("bmcs ready", flush=True)
        while time.monotonic() < deadline:  # until every node is on and done (or the deadline)
            await asyncio.sleep(0.5)
            powered_all = len(tasks) >= len(nodes) or Path(out_path + ".power-done").exists()
            if powered_all and all(t.done() for t in tasks):
                break
        server.close()
    else:
        tasks = [asyncio.create_task(n.run()) for n in nodes]
        await asyncio.wait(tasks, timeout=max(1.0, deadline - time.monotonic()))
    for t in tasks:
        t.cancel()
    for n in nodes:
        n.rec.setdefault("on", None)
        if n.rec["on"] is None:
            n.rec["failed"], n.rec["error"] = "power_on", "never powered on"
        elif "done" not in n.rec:
            n.rec["failed"] = n.rec["failed"] or "deadline"
            n.rec["error"] = n.rec["error"] or "still running at the deadline"
        for k in ("on", "done", "installed"):
            if n.rec.get(k) is not None:
                n.rec[k] = round(n.rec[k] - t0, 4)
    ru = resource.getrusage(resource.RUSAGE_SELF)
    Path(out_path).write_text(json.dumps({"nodes": [n.rec for n in nodes], "dhcp_naks": dhcp.naks,
                                          "nak_messages": dhcp.nak_messages,
                                          "sim_cpu_s": ru.ru_utime + ru.ru_stime,
                                          "sim_maxrss_mib": ru.ru_maxrss / 1024,
                                          "elapsed_s": time.monotonic() - t0}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
