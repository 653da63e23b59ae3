"""The boot storm simulator's smoke (issue 14): 20 simulated nodes, tiny kernel and initrd, against
`dgxie serve` and against dnsmasq + nginx, side by side, through bench/storm/run.py exactly as
`make bench-storm` runs it (namespaces stmsrv/stmcli, deleted at the end).

Fails if any simulated node fails any phase (DHCP as PXE and as iPXE from its own MAC, TFTP with
blksize, script, kernel, initrd, user-data, progress + finished callbacks with the install
credential, and, for dgxie, the local-disk script on the reboot). With `dgxie node power on --all
--batch` available, a second run powers the nodes on in waves through their fake Redfish BMCs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.paths import REPO

RUN = REPO / "bench" / "storm" / "run.py"
N = 20

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (netns, AF_PACKET)"),
    pytest.mark.skipif(not shutil.which("dnsmasq") or not shutil.which("nginx"), reason="dnsmasq/nginx missing"),
    pytest.mark.skipif(not Path("/usr/lib/ipxe/undionly.kpxe").exists(), reason="ipxe binaries missing"),
    pytest.mark.timeout(240),
]


def storm(tmp_path: Path, *args: str) -> tuple[str, list[dict[str, object]]]:
    out = tmp_path / "storm.json"
    r = subprocess.run([sys.executable, str(RUN), "--nodes", str(N), "--kernel-mib", "0.25", "--initrd-mib", "1",
                        "--deadline", "150", "--json", str(out), *args], capture_output=True, text=True,
                       timeout=230, cwd=str(REPO))
    assert r.returncode == 0, r.stdout + r.stderr[-3000:]
    return r.stdout, json.loads(out.read_text())


def test_storm_side_by_side_no_failures(tmp_path: Path) -> None:
    text, results = storm(tmp_path)
    assert [r["stack"] for r in results] == ["dgxie", "peer"]
    for r in results:
        nodes = r["nodes"]
        assert len(nodes) == N and not [n for n in nodes if n["failed"]], text
        assert len({n["mac"] for n in nodes}) == N and len({n["ip"] for n in nodes}) == N  # not one client reused
        assert {n["arch"] for n in nodes} == {0, 7}
        for n in nodes:  # every phase ran; the boot loader came over TFTP (undionly.kpxe / ipxe.efi)
            assert set(n["phases"]) == {"dhcp_pxe", "tftp", "dhcp_ipxe", "script", "kernel", "initrd", "seed",
                                        "callbacks", "reboot"}, n
            assert n["tftp_bytes"] > 60_000 and n["bytes"] >= int(1.25 * (1 << 20))
    dgxie = results[0]["nodes"]
    assert all(n["reboot_local"] for n in dgxie), "an installed node was sent to its installer again"
    assert all('"state":"installed"' in n["finished_answer"] for n in dgxie)
    assert not any(n["reboot_local"] for n in results[1]["nodes"])  # the static script cannot know
    assert re.search(rf"## dgxie \(all\): {N} nodes, 0 failed; time to all installed [\d.]+ s", text), text
    assert "| initrd | 20 |" in text


def _has_bulk_power() -> bool:
    r = subprocess.run([str(Path(sys.executable).parent / "dgxie"), "node", "power", "--help"], capture_output=True,
                       text=True, timeout=60)
    return "--batch" in r.stdout


def test_storm_in_waves_through_fake_bmcs(tmp_path: Path) -> None:
    if not _has_bulk_power():
        pytest.skip("`dgxie node power on --all --batch` not in this tree yet (branch storm-ctl)")
    text, results = storm(tmp_path, "--stacks", "dgxie", "--waves", "5:2")
    r = results[0]
    assert r["start"] == "bmc" and r["power_cli"]["rc"] == 0, text
    ons = sorted(n["on"] for n in r["nodes"])
    assert ons[-1] - ons[0] >= 5.0, ons  # 4 waves of 5, 2 s apart: not all at once
    assert not [n for n in r["nodes"] if n["failed"]], text
