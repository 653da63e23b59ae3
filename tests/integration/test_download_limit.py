"""The big-download limit (`boot.max_downloads`) through `dgxie serve`'s HTTP listener: the fast path
and the API route (a connection that spoke to the API first is served by the route), with slow
readers on real sockets holding the slots, and real curl `--retry` as the client that is told to
come back (`Retry-After`)."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from dgxie import db
from dgxie.catalog import images
from dgxie.context import Context
from tests.support.netboot import free_port, serve_http, write_random

BIG = 32 << 20  # far more than loopback's socket buffers hold for a reader that does not read


def _image(ctx: Context, tmp_path: Path) -> None:
    with db.session_scope(ctx.sessions) as s:
        images.add_image(s, ctx.settings.data_dir, name="img1", kernel=write_random(tmp_path / "vmlinuz", 300_000),
                         initrd=write_random(tmp_path / "initrd.img", BIG), cmdline="", actor="test")


def _read_response(sock: socket.socket) -> tuple[bytes, bytes]:
    """One whole response with a Content-Length body: (head, body)."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(4096)
    head, _, body = buf.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += sock.recv(65536)
    return head, body


def slow_reader(port: int, path: str, *, via_api: bool = False) -> socket.socket:
    """A connection that asks for `path`, reads the status line and then stops reading (its
    receive buffer kept small, so the server's send stalls). `via_api`: one API request first,
    so the image request is served by the FastAPI route instead of the fast path."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.settimeout(10)
    if via_api:
        sock.sendall(b"GET /api/v1/nodes HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_response(sock)[0].startswith(b"HTTP/1.1 401")
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert sock.recv(12).startswith(b"HTTP/1.1 200"), path
    return sock


def _metric(url: str, name: str) -> float:
    m = re.search(rf"^{re.escape(name)} (\S+)$", httpx.get(f"{url}/metrics", timeout=10).text, re.M)
    return float(m.group(1)) if m else 0.0


def _wait_metric(url: str, name: str, value: float) -> None:
    deadline = time.monotonic() + 20
    while _metric(url, name) != value:
        assert time.monotonic() < deadline, f"{name} stayed {_metric(url, name)}, not {value}"
        time.sleep(0.05)


@pytest.mark.skipif(not shutil.which("curl"), reason="curl missing")
def test_third_big_download_gets_503_retry_after_and_curl_retries(make_ctx: Callable[..., Context],
                                                                  tmp_path: Path) -> None:
    port = free_port()
    ctx = make_ctx(public_url=f"http://127.0.0.1:{port}",
                   boot={"max_downloads": 2, "download_retry_after": 1, "download_retry_jitter": 0})
    _image(ctx, tmp_path)
    with serve_http(ctx, port) as url:
        a = slow_reader(port, "/images/img1/initrd.img")
        b = slow_reader(port, "/images/img1/initrd.img", via_api=True)
        _wait_metric(url, "dgxie_downloads_in_flight", 2)
        for client in (httpx.Client(timeout=10), None):
            if client is not None:  # the fast path
                r = client.get(f"{url}/images/img1/initrd.img")
            else:  # the route: a connection that spoke to the API first
                with httpx.Client(timeout=10) as c:
                    assert c.get(f"{url}/api/v1/nodes").status_code == 401
                    r = c.get(f"{url}/images/img1/initrd.img")
            assert r.status_code == 503, r.status_code
            assert r.headers["retry-after"] == "1" and r.json() == {
                "detail": "server busy: 2 big downloads in flight; retry later"}
        # files under download_min_bytes and HEAD are never held back
        assert httpx.get(f"{url}/images/img1/vmlinuz", timeout=10).status_code == 200
        assert httpx.head(f"{url}/images/img1/initrd.img", timeout=10).status_code == 200
        assert _metric(url, 'dgxie_download_throttled_total{proto="http"}') == 2
        # curl asks while both slots are held, is told to come back in 1 s, and gets the file then
        out = tmp_path / "got"
        t0 = time.monotonic()
        curl = subprocess.Popen(["curl", "-S", "--retry", "5", "-m", "60", "-o", str(out),
                                 f"{url}/images/img1/initrd.img"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(0.5)
        a.close()
        b.close()
        _, err = curl.communicate(timeout=90)
        took = time.monotonic() - t0
        assert curl.returncode == 0, err
        assert b"HTTP error. Will retry in 1 seconds" in err, err
        assert out.read_bytes() == (tmp_path / "initrd.img").read_bytes() and took >= 1.0
        _wait_metric(url, "dgxie_downloads_in_flight", 0)
        assert _metric(url, 'dgxie_download_admitted_total{proto="http"}') == 3
        assert _metric(url, 'dgxie_download_throttled_total{proto="http"}') >= 3


def test_no_limit_when_max_downloads_is_0(make_ctx: Callable[..., Context], tmp_path: Path) -> None:
    port = free_port()
    ctx = make_ctx(public_url=f"http://127.0.0.1:{port}", boot={"max_downloads": 0})
    _image(ctx, tmp_path)
    with serve_http(ctx, port) as url:
        held = [slow_reader(port, "/images/img1/initrd.img") for _ in range(3)]
        assert httpx.head(f"{url}/images/img1/initrd.img", timeout=10).status_code == 200
        r = httpx.get(f"{url}/images/img1/initrd.img", timeout=30)
        assert r.status_code == 200 and len(r.content) == BIG
        for s in held:
            s.close()
        assert _metric(url, "dgxie_downloads_in_flight") == 0


def test_docs_state_the_defaults() -> None:
    """docs/configuration.md's rows for the limits give the defaults the settings have."""
    from dgxie.sections.serving import BootConfig, TftpConfig
    from tests.support.paths import REPO

    doc = (REPO / "docs" / "configuration.md").read_text()
    b, t = BootConfig(), TftpConfig()
    row = f"`boot.download_retry_jitter` | {b.max_downloads}, {b.download_min_bytes}, {b.download_retry_after}, " \
          f"{b.download_retry_jitter} |"
    assert row in doc
    assert f"| `tftp.max_transfers` | {t.max_transfers} |" in doc
    assert f"at most `tftp.max_transfers` (default {t.max_transfers}, no limit;" in (REPO / "docs" / "netboot.md").read_text()


LKRN = Path("/usr/lib/ipxe/ipxe.lkrn")


@pytest.mark.skipif(not shutil.which("qemu-system-x86_64") or not LKRN.exists(), reason="qemu or ipxe.lkrn missing")
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # ~10 s of QEMU: the database plays no part
def test_real_ipxe_honours_503_retry_after(make_ctx: Callable[..., Context], tmp_path: Path) -> None:
    """Debian's iPXE (ipxe.lkrn in QEMU, TCG, user networking: no root) gets the script from an
    image file (slirp's DHCP hands it the URL), is answered 503 + Retry-After: 1 for the initrd
    while a slow reader holds the only slot, retries on its own, and fetches it once the slot is
    free; only then does it ask for its marker URL (an API route, counted in /metrics)."""
    port = free_port()
    ctx = make_ctx(public_url=f"http://127.0.0.1:{port}",
                   boot={"max_downloads": 1, "download_retry_after": 1, "download_retry_jitter": 0})
    base = f"http://10.0.2.2:{port}"  # the host's loopback, seen from the guest
    script = write_random(tmp_path / "s.ipxe", 0)
    script.write_text(f"#!ipxe\nimgfetch {base}/images/img1/initrd.img && imgfetch {base}/api/v1/nodes?ipxe-ok ||\n"
                      "poweroff\n")
    with db.session_scope(ctx.sessions) as s:
        images.add_image(s, ctx.settings.data_dir, name="img1", kernel=write_random(tmp_path / "vmlinuz", 1000),
                         initrd=write_random(tmp_path / "initrd.img", 2 << 20), cmdline="", actor="test",
                         extra={"s.ipxe": script, "rootfs": write_random(tmp_path / "rootfs", BIG)})
    marker = 'dgxie_http_requests_total{method="GET",route="/api/v1/nodes",status="401"}'
    with serve_http(ctx, port) as url:
        holder = slow_reader(port, "/images/img1/rootfs")
        vm = subprocess.Popen(["qemu-system-x86_64", "-accel", "tcg", "-m", "128", "-display", "none", "-no-reboot",
                               "-kernel", str(LKRN), "-nic", f"user,model=e1000,bootfile={base}/images/img1/s.ipxe"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 120
            while _metric(url, 'dgxie_download_throttled_total{proto="http"}') < 1:
                assert time.monotonic() < deadline and vm.poll() is None, "iPXE never asked for the initrd"
                time.sleep(0.1)
            assert _metric(url, marker) == 0  # held back: no marker yet
            holder.close()
            while _metric(url, marker) < 1:
                assert time.monotonic() < deadline and vm.poll() is None, "iPXE did not retry the initrd"
                time.sleep(0.1)
            assert _metric(url, 'dgxie_download_admitted_total{proto="http"}') == 2  # the holder's, then iPXE's
        finally:
            vm.kill()
            vm.wait(10)
