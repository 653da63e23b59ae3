"""`dgxie serve` stops within 5 s of SIGTERM, under load, with exit code 0 (issue 14).

A real `dgxie serve` (SQLite, loopback) is loaded the way a boot storm loads it: iPXE script
requests that all miss the script cache (`boot.script_cache_seconds: 0`, a new MAC each time, so
each one is a database read in a worker thread), install-config fetches (a database write each),
and kernel/initrd downloads held open by clients that stop reading (the server's sendfile blocks on
a full socket buffer, as with a slow or stalled node). Then SIGTERM: the process must be gone
within 5 s, by a clean stop (exit 0, or uvicorn's re-raised SIGTERM after its shutdown), with no
error in its log.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from dgxie import config, db
from dgxie.catalog import images
from dgxie.catalog.profiles import create_profile
from dgxie.catalog.schemas import ProfileIn
from dgxie.compose import build_context
from dgxie.nodes.credentials import boot_token
from dgxie.nodes.schemas import NodeCreate
from dgxie.nodes.service import create_node
from tests.support.netboot import free_port, write_random
from tests.support.serve import spawn, wait_healthy

NODES = 100
STALLED = 8  # downloads in flight that never finish
HAMMERS = 12  # connections asking for scripts and configs as fast as they are answered


def _request(port: int, path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()


def _hammer(port: int, paths: list[str], stop: threading.Event, answered: list[int]) -> None:
    """Keep-alive requests, one at a time, until `stop` or the server goes (reconnecting once per error)."""
    i = 0
    while not stop.is_set():
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                f = s.makefile("rb")
                while not stop.is_set():
                    s.sendall(_request(port, paths[i % len(paths)]))
                    i += 1
                    status = f.readline()
                    length = 0
                    for line in iter(f.readline, b"\r\n"):
                        if not line:
                            raise ConnectionError("closed")
                        if line.lower().startswith(b"content-length:"):
                            length = int(line.split(b":")[1])
                    f.read(length)
                    if status.split()[1:2] == [b"200"]:
                        answered[0] += 1
        except OSError:
            time.sleep(0.05)


def _stall(port: int, path: str, held: list[socket.socket]) -> None:
    """Start a download, read its first bytes, then stop reading (the socket stays open)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(_request(port, path))
    assert b"200 OK" in s.recv(4096)
    held.append(s)


@pytest.fixture
def loaded_serve(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int, list[str], str]]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    cfg = {"database_url": f"sqlite:///{tmp_path / 'dgxie.db'}", "data_dir": str(tmp_path / "data"),
           "public_url": url, "api": {"listen": f"127.0.0.1:{port}"}, "log_level": "warning",
           "site": {"ssh_authorized_keys": ["ssh-ed25519 AAAAtest test@dgxie"]},
           "boot": {"script_cache_seconds": 0, "trusted_networks": ["127.0.0.0/8"]},
           "handoff": {"enabled": False}}
    path = tmp_path / "dgxie.yaml"
    path.write_text(yaml.safe_dump(cfg))
    ctx = build_context(config.load(path))
    k = write_random(tmp_path / "vmlinuz", 1 << 20)
    i = write_random(tmp_path / "initrd", 64 << 20)
    macs = [f"52:54:00:01:{n >> 8:02x}:{n & 255:02x}" for n in range(NODES)]
    with db.session_scope(ctx.sessions) as s:
        images.add_image(s, ctx.settings.data_dir, name="img", kernel=k, initrd=i, os="ubuntu",
                         cmdline="autoinstall ds=nocloud-net;s={base}", actor="test")
        create_profile(s, ctx.site, ProfileIn(name="p", image="img", template="ubuntu/autoinstall"), actor="test")
        tokens = [boot_token(ctx.site.box, create_node(s, ctx.site, NodeCreate(hostname=f"n{n}", mac=m, profile="p"),
                                                       actor="test")) for n, m in enumerate(macs)]
    ctx.engine.dispose()
    proc = spawn(path, tmp_path / "serve.log")
    try:
        wait_healthy(url, proc, tmp_path / "serve.log")
        paths = [f"/boot/ipxe?mac={m}" for m in macs] + [f"/boot/n/{t}/user-data" for t in tokens[:10]]
        yield proc, port, paths, str(tmp_path / "serve.log")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def test_sigterm_under_load_stops_within_5_s_with_exit_code_0(
        loaded_serve: tuple[subprocess.Popen[bytes], int, list[str], str]) -> None:
    proc, port, paths, log = loaded_serve
    stop, answered, held = threading.Event(), [0], []
    workers = [threading.Thread(target=_hammer, args=(port, paths[n::HAMMERS], stop, answered), daemon=True)
               for n in range(HAMMERS)]
    try:
        for n in range(STALLED):
            _stall(port, "/images/img/initrd" if n % 2 else "/images/img/vmlinuz", held)
        for w in workers:
            w.start()
        time.sleep(2)
        assert answered[0] > 50, "the load did not get going"
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(30)
        except subprocess.TimeoutExpired:
            pytest.fail(f"dgxie serve still running 30 s after SIGTERM:\n{Path(log).read_text()[-3000:]}")
        took = time.monotonic() - t0
    finally:
        stop.set()
        for s in held:
            s.close()
    out = Path(log).read_text()
    print(f"SIGTERM to exit: {took:.2f} s, exit status {code}, {answered[0]} answers before it")
    assert took < 5.0, f"SIGTERM took {took:.1f} s:\n{out[-3000:]}"
    # uvicorn re-raises the SIGTERM it caught once its graceful shutdown is done, so a clean stop
    # ends by that signal (143 in a shell; systemd counts it as success); an error on the way is logged
    assert code in (0, -signal.SIGTERM), out[-3000:]
    assert "ERROR" not in out and "Traceback" not in out, out[-3000:]
    for w in workers:
        w.join(10)
