"""Real clients against rendered configs and a running `dgxie serve` (SQLite, loopback only).

- `cloud-init schema --config-file` (Debian cloud-init 22.4) on every rendered user-data and
  vendor-data. cloud-init knows `autoinstall` as an opaque key (cc_ubuntu_autoinstall: "full schema
  processed by live-installer"), so it checks the cloud-config around it and that `autoinstall` is a
  mapping; subiquity's own schema checks the inside (tests/unit/test_lifecycle_render.py and here).
- `debconf-set-selections --checkonly` on every preseed; pykickstart's `ksvalidator` on kickstarts.
- cloud-init's NoCloud code (`DataSourceNoCloud.parse_cmdline_data`, `util.read_seeded`) run by the
  system python from the kernel cmdline an image would carry, fetching the seed over HTTP.
- cloud-init's `WebHookHandler` (what subiquity's `reporting: {type: webhook}` uses), curl running
  the exact late-command of the user-data, and busybox wget running the preseed's commands.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from dgxie import config
from dgxie.boot.decide import Action, decide
from dgxie.boot.urls import expand_cmdline
from dgxie.compose import build_context
from dgxie.context import Context
from dgxie.install import seed
from tests.support.lifecycle import SSH_KEY, enroll, install_credential, kinds, node, site, state_of, token_of
from tests.support.net import free_port as _free_port
from tests.support.paths import SHARED
from tests.support.serve import spawn, wait_healthy

SYS_PY = "/usr/bin/python3"  # the Debian python that cloud-init's package installs into
DISKS = ["/dev/nvme0n1", "/dev/nvme1n1"]
UBUNTU = [{}, {"disk_layout": "direct", "os_disks": DISKS[:1], "kernel_flavor": "hwe"},
          {"disk_layout": "raid1", "os_disks": DISKS, "apt_mirror": "ubuntu-noble", "packages": ["htop"],
           "late_commands": ["curtin in-target -- systemctl enable ssh"], "vendor_data": {"packages": ["ipmitool"]}}]
CMDLINES = {"ubuntu": "autoinstall ds=nocloud-net;s={base} ---", "debian": "auto=true priority=critical url={base}preseed",
            "rhel": "inst.ks={base}kickstart"}


def run(*args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120, check=False, **kw)


@pytest.mark.parametrize("pvars", UBUNTU)
def test_cloud_init_schema_accepts_user_data_and_vendor_data(pvars: dict[str, Any], tmp_path: Path) -> None:
    for artifact in ("user-data", "vendor-data"):
        f = tmp_path / artifact
        f.write_text(seed.render(site(), node("ubuntu", profile_vars=pvars), artifact).text)
        r = run("cloud-init", "schema", "--config-file", str(f))
        assert r.returncode == 0 and "Valid cloud-config" in r.stdout, r.stdout + r.stderr


def test_cloud_init_schema_can_fail(tmp_path: Path) -> None:
    """The check above is a real one: cloud-init refuses a non-mapping autoinstall."""
    f = tmp_path / "bad"
    f.write_text("#cloud-config\nautoinstall: 5\n")
    assert run("cloud-init", "schema", "--config-file", str(f)).returncode != 0


@pytest.mark.parametrize("layout", ["lvm", "direct"])
def test_debconf_accepts_the_preseed(layout: str, tmp_path: Path) -> None:
    f = tmp_path / "preseed"
    f.write_text(seed.render(site(), node("debian", profile_vars={"disk_layout": layout, "os_disks": DISKS[:1],
                                                                   "packages": ["htop"]}), "preseed").text)
    r = run("debconf-set-selections", "--checkonly", str(f))
    assert r.returncode == 0, r.stderr
    f.write_text("d-i broken\n")
    assert run("debconf-set-selections", "--checkonly", str(f)).returncode != 0


@pytest.mark.parametrize("pvars", [{}, {"disk_layout": "direct"}, {"disk_layout": "raid1", "os_disks": DISKS,
                                                                     "install_url": "http://10.0.0.1/rocky"}])
def test_pykickstart_accepts_the_kickstart(pvars: dict[str, Any], tmp_path: Path) -> None:
    f = tmp_path / "ks.cfg"
    f.write_text(seed.render(site(), node("rhel", profile_vars=pvars), "kickstart").text)
    ksvalidator = str(Path(sys.executable).parent / "ksvalidator")
    r = run(ksvalidator, "-v", "RHEL9", str(f))
    assert r.returncode == 0 and "rror" not in r.stdout + r.stderr, r.stdout + r.stderr


# --- a running dgxie ---------------------------------------------------------------------------

@dataclass
class Served:
    url: str
    ctx: Context


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cfg = {"database_url": f"sqlite:///{tmp_path / 'dgxie.db'}", "data_dir": str(tmp_path / "data"),
           "public_url": url, "api": {"listen": f"127.0.0.1:{port}"}, "log_level": "warning",
           "site": {"name": "lab", "domain": "lab.example", "ssh_authorized_keys": [SSH_KEY]},
           "mirrors": [{"name": "ubuntu-noble", "kind": "apt", "url": "http://127.0.0.1:9/ubuntu", "suites": ["noble"],
                        "keyring": "/usr/share/keyrings/ubuntu-archive-keyring.gpg"}],
           # ansible role, worker off: "finished" leaves the node `installed` (handoff has its own tests)
           "roles": {"k8s-worker": {"groups": ["kube_node"], "bootstrap": "ansible", "playbook": "site.yml"}},
           "handoff": {"enabled": False},
           # every client here runs on loopback: a trusted relay for every node (address binding has
           # its own tests, tests/integration/test_boot_trust.py)
           "boot": {"trusted_networks": ["127.0.0.0/8"]}}
    path = tmp_path / "dgxie.yaml"
    path.write_text(yaml.safe_dump(cfg))
    ctx = build_context(config.load(path))
    proc = spawn(path, tmp_path / "serve.log")
    try:
        wait_healthy(url, proc, tmp_path / "serve.log")
        yield Served(url, ctx)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        ctx.engine.dispose()


NOCLOUD = """
import json, sys
from cloudinit import util
from cloudinit.sources import DataSourceNoCloud
fill = {}
assert DataSourceNoCloud.parse_cmdline_data("ds=nocloud-net", fill, sys.argv[1]), "no ds=nocloud-net on the cmdline"
md, ud, vd = util.read_seeded(fill["seedfrom"], timeout=10, retries=0)
print(json.dumps({"seedfrom": fill["seedfrom"], "md": md, "ud": ud.decode(), "vd": vd.decode() if vd else None}))
"""


def test_cloud_init_nocloud_fetches_the_seed(served: Served) -> None:
    tok = enroll(served.ctx, profile_vars={"disk_layout": "raid1", "os_disks": DISKS, "apt_mirror": "ubuntu-noble"})
    cmdline = expand_cmdline(CMDLINES["ubuntu"], public_url=served.url, boot_token=tok, hostname="dgx01",
                             mac="aa:bb:cc:00:00:01")
    r = run(SYS_PY, "-c", NOCLOUD, cmdline)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["seedfrom"] == f"{served.url}/boot/n/{tok}/"
    assert got["md"]["local-hostname"] == "dgx01" and got["md"]["instance-id"].startswith("dgxie-dgx01-")
    assert got["ud"].startswith("#cloud-config\n") and yaml.safe_load(got["ud"])["autoinstall"]["version"] == 1
    assert got["vd"].startswith("#cloud-config\n")
    assert state_of(served.ctx, "dgx01") == "installing"  # it fetched its user-data
    bad = expand_cmdline(CMDLINES["ubuntu"], public_url=served.url, boot_token="x" * 32, hostname="dgx01", mac="")
    r = run(SYS_PY, "-c", NOCLOUD, bad)
    assert r.returncode != 0 and "404" in r.stderr


WEBHOOK = """
import sys
from cloudinit.reporting import events, handlers
h = handlers.WebHookHandler(endpoint=sys.argv[1], timeout=10, retries=0)
h.publish_event(events.ReportingEvent("start", "subiquity/Install/install", "installing", origin="curtin"))
h.publish_event(events.ReportingEvent("start", "cmd-install/stage-partitioning", "configuring storage", origin="curtin"))
h.publish_event(events.FinishReportingEvent(sys.argv[2], "curtin command", result=getattr(events.status, sys.argv[3])))
h.flush()
"""


def test_installer_sequence_webhook_and_curl(served: Served) -> None:
    """What subiquity does: webhook events, then the late-command's curl; the next boot is local disk."""
    tok = enroll(served.ctx)
    ud = yaml.safe_load(httpx.get(f"{served.url}/boot/n/{tok}/user-data", timeout=10).text)["autoinstall"]
    events_url = ud["reporting"]["dgxie"]["endpoint"]
    r = run(SYS_PY, "-c", WEBHOOK, events_url, "cmd-install/stage-partitioning", "SUCCESS")
    assert r.returncode == 0 and "Failed posting" not in r.stderr, r.stderr
    assert state_of(served.ctx, "dgx01") == "installing"
    for _ in range(2):  # the late-command, then a replay: idempotent
        r = run("sh", "-c", ud["late-commands"][-1])
        assert r.returncode == 0, r.stderr
        assert state_of(served.ctx, "dgx01") == "installed"
    assert kinds(served.ctx, "dgx01").count("install.finished") == 1
    assert decide(state_of(served.ctx, "dgx01"), discovery=False).action is Action.LOCAL_DISK
    assert run("sh", "-c", ud["early-commands"][0]).returncode != 0  # 409 for an installed node: curl -f fails
    # an installed node has no more use for its install config: it is not served again
    assert httpx.get(f"{served.url}/boot/n/{tok}/user-data", timeout=10).status_code == 409


def test_webhook_reports_a_curtin_failure(served: Served) -> None:
    tok = enroll(served.ctx)
    # without the credential of the fetched config the failure changes nothing (cloud-init logs the 401)
    run(SYS_PY, "-c", WEBHOOK, f"{served.url}/boot/n/{tok}/events", "cmd-install", "FAIL")
    assert state_of(served.ctx, "dgx01") == "enrolled"
    ud = yaml.safe_load(httpx.get(f"{served.url}/boot/n/{tok}/user-data", timeout=10).text)["autoinstall"]
    r = run(SYS_PY, "-c", WEBHOOK, ud["reporting"]["dgxie"]["endpoint"], "cmd-install", "FAIL")
    assert r.returncode == 0, r.stderr
    assert state_of(served.ctx, "dgx01") == "failed"


def test_busybox_wget_runs_the_preseed_callbacks(served: Served) -> None:
    """d-i's early/late commands post with busybox wget, form-encoded; so can any initrd."""
    tok = enroll(served.ctx, os="debian")
    pre = httpx.get(f"{served.url}/boot/n/{tok}/preseed", timeout=10).text
    early = next(ln for ln in pre.splitlines() if ln.startswith("d-i preseed/early_command string "))
    early_cmd = early.split(" string ", 1)[1]
    late_cmd = pre.split("d-i preseed/late_command string ", 1)[1].replace("\\\n", "").split(";")[-1]
    assert early_cmd.startswith("wget ") and late_cmd.strip().startswith("wget ")
    for cmd, state in ((early_cmd, "installing"), (late_cmd, "installed")):
        r = run("busybox", "sh", "-c", "busybox " + cmd.strip().removesuffix("|| true").strip())
        assert r.returncode == 0, r.stderr
        assert state_of(served.ctx, "dgx01") == state
    old = token_of(served.ctx, "dgx01")
    assert old == tok  # installed: the preseed is not served again (409)
    assert run("busybox", "wget", "-q", "-O", "-", f"{served.url}/boot/n/{old}/preseed").returncode != 0


def test_reprovision_then_old_urls_are_gone(served: Served) -> None:
    tok = enroll(served.ctx, state="installed")
    r = run(sys.executable, "-m", "dgxie", "node", "reprovision", "dgx01", "--config",
            str(Path(served.ctx.settings.data_dir).parent / "dgxie.yaml"))
    assert r.returncode == 0, r.stderr
    new = token_of(served.ctx, "dgx01")
    assert new != tok
    assert httpx.get(f"{served.url}/boot/n/{tok}/user-data", timeout=10).status_code == 404
    r = run("curl", "-fsS", "-o", "/dev/null", "-d", "event=finished", f"{served.url}/boot/n/{tok}/events")
    assert r.returncode != 0 and "404" in r.stderr
    assert httpx.get(f"{served.url}/boot/n/{new}/meta-data", timeout=10).status_code == 200
    assert shlex.quote(new) == new  # a token is safe on a kernel cmdline and in a shell


def test_shared_reference_is_reachable() -> None:
    assert (SHARED / "reference" / "subiquity-autoinstall-schema.json").is_file()


def test_curl_follows_the_event_stream(served: Served) -> None:
    """SSE through uvicorn to curl: events arrive while the stream is open."""
    from dgxie import db, tokens

    with db.session_scope(served.ctx.sessions) as s:
        _, viewer = tokens.create_token(s, name="watcher", role="viewer", actor="test")
    tok = enroll(served.ctx)
    proc = subprocess.Popen(["curl", "-sN", "--max-time", "30", "-H", f"Authorization: Bearer {viewer}",
                             f"{served.url}/api/v1/nodes/dgx01/events/stream?timeout=8&poll=0.2"],
                            stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(1.0)
        for body in (b"event=started", b"event=finished"):  # each with the credential a config fetch mints
            cred = install_credential(served.ctx, tok)
            assert httpx.post(f"{served.url}/boot/n/{tok}/events/{cred}", content=body, timeout=10).status_code == 200
        out, _ = proc.communicate(timeout=40)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    kinds_seen = [ln.removeprefix("event: ") for ln in out.splitlines() if ln.startswith("event: ")]
    assert kinds_seen == ["node.create", "install.start", "install.finished"]
