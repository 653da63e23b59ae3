"""`dgxie render`, `dgxie node reprovision` and `dgxie node watch` in-process (both databases)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from dgxie import db, resources
from dgxie.context import Context
from dgxie.nodes import callbacks, credentials, service
from tests.support.lifecycle import SSH_KEY, enroll, kinds, state_of, token_of

SITE = {"site": {"name": "lab", "domain": "lab.example", "ssh_authorized_keys": [SSH_KEY], "vars": {"admin_user": "ops"}},
        "vars": {"locale": "de_DE.UTF-8"}}


def test_render_prints_what_the_node_gets(cli: Callable[..., Any], ctx: Context, config_file: Callable[..., Path]) -> None:
    config_file(**SITE)
    enroll(ctx, profile_vars={"disk_layout": "direct"}, node_vars={"packages": ["htop"]})
    r = cli("render", "dgx01", "user-data")
    assert r.code == 0, r.err
    auto = yaml.safe_load(r.out)["autoinstall"]
    assert auto["identity"]["username"] == "ops" and auto["locale"] == "de_DE.UTF-8"
    assert auto["packages"] == ["htop"] and auto["ssh"]["authorized-keys"] == [SSH_KEY]
    assert cli("render", "aa:bb:cc:00:00:01", "meta-data").out.startswith("instance-id: ")
    assert state_of(ctx, "dgx01") == "enrolled"  # rendering is a preview: nothing changes


def test_render_explain(cli: Callable[..., Any], ctx: Context, config_file: Callable[..., Path]) -> None:
    config_file(**SITE)
    enroll(ctx, profile_vars={"disk_layout": "direct"}, node_vars={"packages": ["htop"]})
    r = cli("render", "dgx01", "user-data", "--explain")
    assert r.code == 0, r.err
    assert r.out.splitlines()[0] == f"# template: ubuntu/user-data.j2 (shipped: {resources.templates() / 'ubuntu/user-data.j2'})"
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in r.out.splitlines()[2:]}
    assert rows["packages"] == ["node", '["htop"]  # over default']
    assert rows["locale"] == ["global", '"de_DE.UTF-8"  # over default']
    assert rows["admin_user"] == ["site", '"ops"  # over default']
    assert rows["disk_layout"] == ["profile", '"direct"  # over default']
    assert rows["domain"] == ["site", '"lab.example"'] and rows["hostname"] == ["dgxie", '"dgx01"']


def test_a_site_template_overrides_the_shipped_one(cli: Callable[..., Any], ctx: Context,
                                                   config_file: Callable[..., Path], tmp_path: Path) -> None:
    """handoff.templates_dir wins file by file, for install configs and iPXE scripts alike, and
    `--explain` names the file used."""
    site_dir = tmp_path / "site-templates"
    (site_dir / "ipxe").mkdir(parents=True)
    shipped = resources.templates() / "ipxe" / "install.ipxe.j2"
    (site_dir / "ipxe" / "install.ipxe.j2").write_text(shipped.read_text().replace("#!ipxe\n", "#!ipxe\n# site copy\n", 1))
    config_file(**SITE, handoff={"enabled": False, "templates_dir": str(site_dir)})
    enroll(ctx)
    assert cli("render", "dgx01", "ipxe").out.startswith("#!ipxe\n# site copy\n")
    assert f"\n# template: ipxe/install.ipxe.j2 (site: {site_dir / 'ipxe/install.ipxe.j2'})\n" in cli(
        "render", "dgx01", "ipxe", "--explain").out
    explain = cli("render", "dgx01", "user-data", "--explain").out  # not in the site folder: the shipped one
    assert explain.startswith(f"# template: ubuntu/user-data.j2 (shipped: {resources.templates() / 'ubuntu/user-data.j2'})\n")


def test_render_errors_are_one_clear_line(cli: Callable[..., Any], ctx: Context) -> None:
    enroll(ctx, node_vars={"disk_layout": "raid1"})
    r = cli("render", "dgx01", "user-data")
    assert r.code == 1 and r.out == ""
    assert r.err.strip() == ("dgxie: error: ubuntu/user-data.j2 (template line 38): disk_layout raid1 needs "
                             "os_disks: two disk paths (it has 0)")
    assert cli("render", "dgx01", "preseed").err.startswith("dgxie: error: dgx01: template set ubuntu has no preseed")
    r = cli("render", "dgx01", "ipxe")  # the iPXE script, by the same function as GET /boot/ipxe
    assert r.code == 0 and r.out.startswith("#!ipxe")
    assert cli("render", "dgx01", "bogus").code == 1
    assert cli("render", "nope", "user-data").err.strip() == "dgxie: error: no node 'nope'"


def test_reprovision_cli(cli: Callable[..., Any], ctx: Context) -> None:
    tok = enroll(ctx, state="installed")
    r = cli("node", "reprovision", "dgx01")
    assert r.code == 0, r.err
    assert state_of(ctx, "dgx01") == "enrolled" and token_of(ctx, "dgx01") != tok
    assert kinds(ctx, "dgx01")[-1] == "reprovision"
    r = cli("node", "reprovision", "dgx01")  # already enrolled: the token rotates again
    assert r.code == 0 and kinds(ctx, "dgx01")[-1] == "reprovision"
    enroll(ctx, "disc", "aa:bb:cc:00:00:09", state="discovered")
    assert "is discovered" in cli("node", "reprovision", "disc").err


def _callback(ctx: Context, token: str, body: bytes, delay: float) -> None:
    time.sleep(delay)
    with db.session_scope(ctx.sessions) as s:
        node = credentials.node_by_boot_token(s, ctx.site.box, token)
        callbacks.apply(s, node, callbacks.parse(body), interval=0)


def test_watch_follows_until_installed(cli: Callable[..., Any], ctx: Context) -> None:
    tok = enroll(ctx)
    t = threading.Thread(target=lambda: [_callback(ctx, tok, b"event=started", 0.3),
                                         _callback(ctx, tok, b"event=progress&message=curtin", 0.1),
                                         _callback(ctx, tok, b"event=finished", 0.1)])
    t.start()
    r = cli("node", "watch", "dgx01", "--poll", "0.1", "--timeout", "60")
    t.join()
    assert r.code == 0, r.err
    assert "install.start" in r.out and "install.finished" in r.out and "enrolled->installing" in r.out
    assert r.err.strip() == "dgx01: installed"


def test_watch_failed_and_timeout(cli: Callable[..., Any], ctx: Context) -> None:
    enroll(ctx, state="failed")
    assert cli("node", "watch", "dgx01").code == 1
    enroll(ctx, "dgx02", "aa:bb:cc:00:00:02")
    r = cli("node", "watch", "dgx02", "--timeout", "0.3", "--poll", "0.1")
    assert r.code == 1 and r.err.strip() == "dgxie: error: dgx02: still enrolled after 0.3s"
    with db.session_scope(ctx.sessions) as s:
        assert service.get_node(s, "dgx02").state == "enrolled"


def test_profile_naming_a_missing_image(cli: Callable[..., Any], ctx: Context, config_file: Callable[..., Path]) -> None:
    config_file(profiles={"dgx-worker": {"image": "ubuntu-24.04", "template": "ubuntu/autoinstall"}})
    assert cli("node", "add", "dgx09", "--mac", "aa:bb:cc:00:00:19", "--profile", "dgx-worker").code == 0
    r = cli("render", "dgx09", "user-data")
    assert r.code == 1
    assert r.err.strip() == "dgxie: error: profile dgx-worker: image 'ubuntu-24.04' is not registered (dgxie image add)"
