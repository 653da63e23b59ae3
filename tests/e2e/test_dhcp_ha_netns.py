"""Two DHCP servers on one segment (issue 15, part 4; docs/dhcp.md "Two servers on one segment"):
two real `dgxie serve` processes with `dhcp.ha` on one bridge and one PostgreSQL, perfdhcp
(many simulated clients, as a relay agent broadcasting to both) and ISC dhclient clients, and
the first server killed with SIGKILL in the middle of the load.

Checked: before the kill each client is answered by the server its RFC 3074 hash names only;
no address is ACKed to two MACs (every reply the load generator's side sees, sniffed) nor held
by two MACs in `dhcp_leases`; the survivor answers the dead server's clients (perfdhcp's, and
dhclients started at the kill whose MACs belong to the dead one) within 10 s of the kill.
Timings are printed with -s. Runs in about 40 s; namespaces `ddha*` are deleted even on failure.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from dgxie import db
from dgxie.netboot.dhcp import codec as c
from dgxie.netboot.dhcp.ha import HaFilter, split_pool
from tests.support import dhcp_ha_netns as ha
from tests.support.paths import REPO

PG_ADMIN = os.environ.get("DGXIE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_SOCKET = Path("/var/run/postgresql")
pytestmark = [pytest.mark.e2e, pytest.mark.postgres,
              pytest.mark.skipif(os.geteuid() != 0 or shutil.which("perfdhcp") is None
                                 or shutil.which("dhclient") is None or shutil.which("ip") is None
                                 or not (PG_SOCKET / ".s.PGSQL.5432").exists(),
                                 reason="needs root, kea-admin (perfdhcp), isc-dhcp-client, iproute2 and "
                                        "PostgreSQL's Unix socket (.ci/apt-packages.txt)")]

KILLED, SURVIVOR = "boot-a", "boot-b"  # boot-a sorts first: server 0 (lower half of the pool)
TAKEOVER_BOUND = 10.0  # seconds from the kill to the survivor answering the dead server's clients
LOAD_SECONDS, KILL_AFTER, RATE, CLIENTS = 16, 5, 100, 800
DHCLIENTS = 2


DHCLIENT_OUI = bytes([0x52, 0x54, 0x00, 0xDA])


def owner(mac: bytes) -> int:
    """The server a client belongs to: dhclient sends no client id here (our -cf), perfdhcp sends
    option 61 = 01 + MAC (RFC 3074 hashes it when present)."""
    return HaFilter(0).owner(None if mac.startswith(DHCLIENT_OUI) else b"\x01" + mac, mac)


@pytest.fixture
def database() -> Iterator[tuple[str, str]]:
    """A fresh migrated database: (URL from this namespace, URL through the Unix socket)."""
    name = f"dgxie_ha_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    try:
        db.upgrade(url)
        yield url, f"postgresql://postgres@/{name}?host={PG_SOCKET}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def dhclient_macs() -> list[str]:
    """MACs whose clients belong to the server that will be killed."""
    macs = [DHCLIENT_OUI + bytes([0, n]) for n in range(256)]
    return [m.hex(":") for m in macs if owner(m) == 0][:DHCLIENTS]


def beats(url: str) -> dict[str, int]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {str(n): int(b) for n, b in conn.execute("SELECT name, beat FROM dhcp_peers")}


def test_two_servers_one_segment_kill_one(database: tuple[str, str], tmp_path: Path) -> None:
    url, socket_url = database
    macs = dhclient_macs()
    ha.setup(macs)
    servers: dict[str, ha.Serve] = {}
    sniffer = gen = None
    try:
        servers = {name: ha.Serve(tmp_path, name, socket_url) for name in ha.SERVERS}
        deadline = time.monotonic() + 120
        for s in servers.values():
            s.wait_serving(deadline)
        while not all(b >= 3 for b in beats(url).values()) or len(beats(url)) < 2:  # both beat, both seen
            assert time.monotonic() < deadline, beats(url)
            time.sleep(0.2)
        sniff_log = tmp_path / "replies.txt"
        sniffer = subprocess.Popen(["ip", "netns", "exec", ha.GEN, sys.executable, "-c", ha.SNIFFER, str(sniff_log),
                                    str(LOAD_SECONDS + 20), "ddhag"], stdout=subprocess.PIPE, text=True,
                                   env=dict(os.environ, PYTHONPATH=str(REPO)), cwd=str(REPO))
        assert sniffer.stdout is not None and sniffer.stdout.readline().strip() == "ready"
        gen = subprocess.Popen(["ip", "netns", "exec", ha.GEN, "perfdhcp", "-4", "-l", "ddhag", "-r", str(RATE),
                                "-R", str(CLIENTS), "-p", str(LOAD_SECONDS), "-b", "mac=00:0c:03:00:00:00",
                                "-W", "200000"],  # no server: broadcast to all
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        time.sleep(KILL_AFTER)
        servers[KILLED].stop(signal.SIGKILL)
        t_kill = time.time()
        got: dict[int, tuple[float, str | None]] = {}
        conf = ha.dhclient_conf(tmp_path)
        threads = [threading.Thread(target=ha.run_dhclient, args=(n, tmp_path, conf, got, t_kill))
                   for n in range(len(macs))]
        for t in threads:
            t.start()
        perf_out, _ = gen.communicate(timeout=LOAD_SECONDS + 60)
        for t in threads:
            t.join(90)
        (tmp_path / "perfdhcp.txt").write_text(perf_out)
        time.sleep(1.5)  # the survivor's last leases reach the database (write-behind: < 1 s)
        sniffer.kill()
        sniffer.wait(10)

        replies = [line.split() for line in sniff_log.read_text().splitlines()]
        assert len(replies) > RATE * KILL_AFTER, f"too few replies sniffed: {len(replies)}\n{perf_out}"
        killed_ip, survivor_ip = ha.SERVERS[KILLED][1], ha.SERVERS[SURVIVOR][1]
        # 1. before the kill, each client is answered by its own server only
        wrong = [r for r in replies if float(r[0]) < t_kill
                 and r[4] != (killed_ip if owner(bytes.fromhex(r[2].replace(":", ""))) == 0 else survivor_ip)]
        assert not wrong, wrong[:5]
        # 2. no address ACKed to two MACs
        acked: dict[str, set[str]] = defaultdict(set)
        for r in replies:
            if int(r[1]) == c.ACK:
                acked[r[3]].add(r[2])
        dup = {ip: m for ip, m in acked.items() if len(m) > 1}
        assert not dup and len(acked) > 100, dup
        # 3. nor held by two MACs in dhcp_leases
        with psycopg.connect(url, autocommit=True) as conn:
            rows = conn.execute("SELECT ip, count(*) FROM dhcp_leases GROUP BY ip HAVING count(*) > 1").fetchall()
            leases = conn.execute("SELECT count(*) FROM dhcp_leases").fetchone()
        assert rows == [] and leases is not None and leases[0] > 100, rows
        # 4. the survivor answers the dead server's perfdhcp clients within the bound
        taken = [float(r[0]) - t_kill for r in replies if float(r[0]) > t_kill and r[4] == survivor_ip
                 and int(r[1]) == c.ACK and owner(bytes.fromhex(r[2].replace(":", ""))) == 0]
        assert taken, "the survivor never ACKed a client of the dead server"
        # ... and dhclients started at the kill, whose MACs belong to the dead server, get an address
        # from the survivor's half of the pool
        lo, hi = (ipaddress.IPv4Address(a) for a in ha.POOL)
        part = split_pool((int(lo), int(hi)), 1)
        assert part is not None
        for n in range(len(macs)):
            took, addr = got[n]
            assert addr is not None, (tmp_path / f"dhc{n}.log").read_text()
            assert part[0] <= int(ipaddress.IPv4Address(addr)) <= part[1], addr
            assert took < TAKEOVER_BOUND, f"dhclient {n} got {addr} only {took:.1f} s after the kill"
        assert "answering its clients too" in servers[SURVIVOR].text()
        for s in servers.values():  # LISTEN/NOTIFY through the Unix socket too
            assert "changes: listening for committed changes" in s.text()
        print(f"\nHA: first ACK by the survivor to a dead server's client {min(taken):.2f} s after the kill; "
              f"dhclients bound after {', '.join(f'{got[n][0]:.2f}' for n in sorted(got))} s; "
              f"{len(replies)} replies sniffed, {len(acked)} addresses ACKed, {leases[0]} lease rows, 0 duplicates")
        assert min(taken) < TAKEOVER_BOUND
    finally:
        for proc in (gen, sniffer):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait(10)
        for s in servers.values():
            s.stop(signal.SIGKILL)
        ha.teardown(len(macs))
