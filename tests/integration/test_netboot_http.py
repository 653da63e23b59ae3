"""Boot HTTP endpoints through the app (SQLite and PostgreSQL), the fast path with real curl
(Range, HEAD, 416, keep-alive), and `dgxie image add|list` / `dgxie render NODE ipxe`."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dgxie import db
from dgxie.app import create_app
from dgxie.catalog import images
from dgxie.catalog.profiles import create_profile
from dgxie.catalog.schemas import ProfileIn
from dgxie.context import Context
from dgxie.models import Node
from dgxie.nodes.credentials import boot_token
from dgxie.nodes.schemas import NodeCreate
from dgxie.nodes.service import create_node
from tests.support.netboot import free_port, serve_http, write_random

CMDLINE = "console=ttyS0 ds=nocloud-net;s={base} host={hostname} mac={mac}"


def _setup(ctx: Context, tmp_path: Path, *, with_disc: bool = False) -> dict[str, Any]:
    k, i = write_random(tmp_path / "vmlinuz", 300_000), write_random(tmp_path / "initrd.img", 1_000_001)
    with db.session_scope(ctx.sessions) as s:
        images.add_image(s, ctx.settings.data_dir, name="img1", kernel=k, initrd=i, cmdline=CMDLINE,
                         extra={"root.squashfs": write_random(tmp_path / "sq", 70_000)}, actor="test")
        if with_disc:
            images.add_image(s, ctx.settings.data_dir, name="disc", kernel=k, initrd=i, cmdline="disc mac={mac}",
                             actor="test")
        create_profile(s, ctx.site, ProfileIn(name="p1", image="img1"), actor="test")
        create_profile(s, ctx.site, ProfileIn(name="noimg"), actor="test")
        for host, mac, prof in (("n1", "52:54:00:00:00:01", "p1"), ("n2", "52:54:00:00:00:02", "p1"),
                                ("n3", "52:54:00:00:00:03", "noimg")):
            create_node(s, ctx.site, NodeCreate(hostname=host, mac=mac, profile=prof), actor="test")
        s.scalars(select(Node).where(Node.hostname == "n2")).one().state = "installed"
        token = boot_token(ctx.site.box, s.scalars(select(Node).where(Node.hostname == "n1")).one())
    return {"kernel": k, "initrd": i, "token": token}


def test_ipxe_script_per_decision(ctx: Context, tmp_path: Path) -> None:
    info = _setup(ctx, tmp_path)
    with TestClient(create_app(ctx)) as client:
        r = client.get("/boot/ipxe", params={"mac": "52-54-00-00-00-01"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        base = ctx.site.public_url
        assert f"kernel {base}/images/img1/vmlinuz initrd=initrd.img console=ttyS0 " in r.text
        assert f"s={base}/boot/n/{info['token']}/ host=n1 mac=52:54:00:00:00:01" in r.text
        assert f"initrd {base}/images/img1/initrd.img" in r.text
        local = client.get("/boot/ipxe?mac=52:54:00:00:00:02").text
        assert "sanboot --no-describe --drive 0x80" in local and "kernel" not in local
        noimg = client.get("/boot/ipxe?mac=52:54:00:00:00:03").text
        assert "has nothing to boot: its profile has no image" in noimg and "\nexit 1" in noimg
        unknown = client.get("/boot/ipxe?mac=52:54:00:00:00:99").text
        assert "52:54:00:00:00:99 is not enrolled" in unknown and "kernel" not in unknown
        bad = client.get("/boot/ipxe?mac=nonsense")
        assert bad.status_code == 422 and "not a MAC" in bad.json()["detail"]
        assert client.get("/boot/ipxe").status_code == 422
        img = client.get("/images/img1/vmlinuz", headers={"Range": "bytes=10-19"})
        assert img.status_code == 206 and img.content == info["kernel"].read_bytes()[10:20]
        assert client.get("/images/img1/nope").status_code == 404
        assert client.get("/images/nope/vmlinuz").status_code == 404
        if Path("/usr/lib/ipxe/ipxe.efi").exists():  # UEFI HTTP boot clients are sent /boot/ipxe.efi
            efi = client.get("/boot/ipxe.efi")
            assert efi.status_code == 200 and efi.content == Path("/usr/lib/ipxe/ipxe.efi").read_bytes()
            assert client.head("/boot/ipxe.efi").status_code == 200
        assert client.get("/boot/passwd").status_code == 404
        metrics = client.get("/metrics").text
        for action in ("install", "local", "ignore"):
            assert f'dgxie_boot_decisions_total{{action="{action}"}}' in metrics


def test_discovery_script(make_ctx: Callable[..., Context], tmp_path: Path) -> None:
    ctx = make_ctx(dhcp={"discovery": True}, boot={"discovery_image": "disc"})
    _setup(ctx, tmp_path, with_disc=True)
    with TestClient(create_app(ctx)) as client:
        out = client.get("/boot/ipxe?mac=52:54:00:00:00:77").text
    assert "booting the discovery image disc" in out
    assert "kernel http://127.0.0.1:8080/images/disc/vmlinuz initrd=initrd.img disc mac=52:54:00:00:00:77" in out


@pytest.mark.skipif(not shutil.which("curl"), reason="curl missing")
def test_fast_path_with_curl(make_ctx: Callable[..., Context], tmp_path: Path) -> None:
    port = free_port()
    ctx = make_ctx(public_url=f"http://127.0.0.1:{port}")
    info = _setup(ctx, tmp_path)
    kernel = info["kernel"].read_bytes()

    def curl(*args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(["curl", "-sS", "-m", "20", *args], capture_output=True, timeout=30)

    with serve_http(ctx, port) as url:
        full = curl(f"{url}/images/img1/vmlinuz")
        assert full.returncode == 0 and full.stdout == kernel
        part = curl("-r", "1000-1999", f"{url}/images/img1/vmlinuz")
        assert part.stdout == kernel[1000:2000]
        tail = curl("-r", "-100", f"{url}/images/img1/vmlinuz")
        assert tail.stdout == kernel[-100:]
        head = curl("-I", f"{url}/images/img1/root.squashfs").stdout.decode()
        assert "200 OK" in head and "Content-Length: 70000" in head and "Accept-Ranges: bytes" in head
        r416 = curl("-i", "-r", "999999999-", f"{url}/images/img1/vmlinuz").stdout.decode()
        assert "416" in r416.splitlines()[0] and f"bytes */{len(kernel)}" in r416
        assert "404" in curl("-i", f"{url}/images/img1/missing").stdout.decode().splitlines()[0]
        # resume a download (what an installer's wget -c does)
        (tmp_path / "dl").write_bytes(kernel[:5000])
        assert curl("-C", "-", "-o", str(tmp_path / "dl"), f"{url}/images/img1/vmlinuz").returncode == 0
        assert (tmp_path / "dl").read_bytes() == kernel
        # several requests on one keep-alive connection, fast path and API mixed
        multi = curl("-w", "%{num_connects} ", f"{url}/boot/ipxe?mac=52:54:00:00:00:01", f"{url}/boot/ipxe?mac=52:54:00:00:00:01",
                     f"{url}/healthz", f"{url}/images/img1/vmlinuz", "-o", "/dev/null", "-o", "/dev/null",
                     "-o", "/dev/null", "-o", str(tmp_path / "k2"))
        assert multi.returncode == 0 and (tmp_path / "k2").read_bytes() == kernel
        assert multi.stdout.decode().split() == ["1", "0", "0", "0"]  # one TCP connection for all four
        script = curl(f"{url}/boot/ipxe?mac=52:54:00:00:00:01").stdout.decode()
        assert f"kernel {url}/images/img1/vmlinuz" in script
        assert b'"status":"ok"' in curl(f"{url}/healthz").stdout


def test_cli_image_add_list_render(cli: Callable[..., Any], tmp_path: Path) -> None:
    k, i = write_random(tmp_path / "vmlinuz", 1000), write_random(tmp_path / "initrd.img", 2000)
    r = cli("image", "add", "img1", "--kernel", str(k), "--initrd", str(i), "--cmdline", "console=ttyS0 h={hostname}",
            "--file", f"extra.iso={k}", "--os", "debian")
    assert r.code == 0, r.err
    listed = cli("image", "list", "--json")
    assert '"extra.iso"' in listed.out and '"sha256"' in listed.out
    assert cli("image", "add", "img1", "--kernel", str(k), "--initrd", str(i)).code == 1
    bad = cli("image", "add", "img2", "--kernel", str(tmp_path / "missing"), "--initrd", str(i))
    assert bad.code == 1 and "not a readable file" in bad.err
    assert cli("image", "add", "img3", "--kernel", str(k), "--initrd", str(i), "--file", "x").code == 1
    assert "img2" not in cli("image", "list", "--json").out
    assert cli("node", "add", "n1", "--mac", "52:54:00:00:00:01").code == 0
    out = cli("render", "n1", "ipxe")
    assert out.code == 0 and out.out.startswith("#!ipxe") and "has nothing to boot" in out.out
    unknown = cli("render", "52:54:00:00:00:42", "ipxe")
    assert "is not enrolled" in unknown.out
    assert cli("render", "n1", "kickstart").code == 1


def test_a_change_committed_here_reaches_the_cached_script_at_once(make_ctx: Callable[..., Context]) -> None:
    """A node that posts `finished` and reboots at once gets its local-disk script, however long
    scripts are cached (the storm simulator found the installer again for up to 2 s); a change
    made elsewhere (another process) is bounded by the cache's ttl only."""
    from dgxie import db
    from dgxie.boot.state import State
    from dgxie.nodes import service
    from dgxie.nodes.lifecycle import transition
    from tests.support.lifecycle import enroll

    # no handoff: its worker would start the installed node's bootstrap (a change, which drops the
    # cache) at any moment, racing the read-only check below
    ctx = make_ctx(boot={"script_cache_seconds": 60}, handoff={"enabled": False})
    enroll(ctx, "n9", "52:54:00:00:09:01", state="installing")
    with TestClient(create_app(ctx)) as client:
        assert "kernel " in client.get("/boot/ipxe?mac=52:54:00:00:09:01").text
        assert ctx.scripts.cached("52:54:00:00:09:01") is not None  # held for 60 s
        with db.session_scope(ctx.sessions) as s:
            transition(s, service.get_node(s, "n9"), State.INSTALLED, actor="test", kind="state", reason="finished")
        assert "sanboot --no-describe --drive 0x80" in client.get("/boot/ipxe?mac=52:54:00:00:09:01").text
        with db.session_scope(ctx.sessions) as s:
            service.get_node(s, "n9")  # a read-only transaction changes nothing
        assert ctx.scripts.cached("52:54:00:00:09:01") is not None
