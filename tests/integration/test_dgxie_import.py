"""A DGXIE site moves over (docs/migrating-from-dgxie.md): DeepOps' real machines.json and env
file are imported, every entry renders an iPXE script whose every URL dgxie serves with the bytes
DGXIE served, from the image store (`--files`) or fetched once from DGXIE's server (`--proxy`);
an imported DGXIE seed's `action=end` report marks the node installed. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from dgxie import db
from dgxie.app import create_app
from dgxie.catalog.images import image_by_name
from dgxie.context import Context
from tests.support.doc_console import console_steps, missing
from tests.support.paths import SHARED

REF = SHARED / "reference/deepops"
MACHINES = REF / "dgxie-machines.example.json"
ENV = REF / "dgxie-pxe-env.example"
# DGXIE's /www: the DGX ISO mounted under iso/, the preseed as dgx.seed, ESXi's files under vmware/
WWW = {"iso/install/netboot/ubuntu-installer/amd64/linux": b"KERNEL-dgx-netboot\n",
       "iso/install/netboot/ubuntu-installer/amd64/initrd.gz": b"INITRD-dgx-netboot\n",
       "dgx.seed": b"d-i debian-installer/locale string en_US.UTF-8\n",
       "vmware/mboot.efi": b"MBOOT\n", "vmware/boot.cfg": b"kernel=b.b00\n"}
# a MAC that each entry's regex chooses first (None: shadowed, enrolled with --profile)
MACS = {"esxi-example": "54:ab:3a:00:00:01", "dgx-station-example": "2c:56:dc:00:00:02",
        "dgx-1-example": "d8:c4:97:00:00:03", "dgx-2-example": "5c:ff:35:00:00:04",
        "64-bit-ubuntu-example": None, "64-bit-coreos-example": None, "32-bit-ubuntu-example": "00:24:e8:de:bf:53"}


def _www(root: Path) -> Path:
    for rel, data in WWW.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


@pytest.fixture
def dgxie_http(tmp_path: Path) -> Iterator[tuple[str, ThreadingHTTPServer]]:
    """DGXIE's nginx stand-in: a real HTTP server on loopback serving its /www tree."""
    root = _www(tmp_path / "upstream")
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(SimpleHTTPRequestHandler, directory=str(root)))
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", server
    server.shutdown()
    server.server_close()


def test_reference_files_import_and_every_machine_boots(cli, ctx: Context, tmp_path: Path) -> None:
    www = _www(tmp_path / "www")
    r = cli("node", "import", str(MACHINES), "--files", str(www), "--env", str(ENV))
    assert r.code == 0, r.err
    assert "14 created, 0 updated, 0 unchanged" in r.err
    assert r.err.count("never chosen by MAC") == 2  # the two 2c:56:dc:47:f5:1f entries, as under DGXIE
    for i, (name, mac) in enumerate(MACS.items()):
        args = ("--mac", mac) if mac else ("--mac", f"02:00:00:00:00:{i:02x}", "--profile", name)
        assert cli("node", "add", name.replace("-example", "").replace("64-bit", "b64"), *args).code == 0
    remote = ("64-bit-ubuntu-example", "64-bit-coreos-example", "32-bit-ubuntu-example")  # internet URLs
    with TestClient(create_app(ctx)) as c:
        for name in MACS:
            host = name.replace("-example", "").replace("64-bit", "b64")
            node = json.loads(cli("node", "show", host, "--json").out)
            assert node["profile"] == name, node
            script = cli("render", host, "ipxe").out
            assert script.startswith("#!ipxe") and f"installs {name}" in script, script
            assert "$HTTP_PORT" not in script and "{{" not in script and "localhost" not in script
            urls = re.findall(r"http://127\.0\.0\.1:8080(/images/[^\s]+)", script)
            assert urls, script
            if name in remote:
                continue  # fetched on first use from archive.ubuntu.com / core-os.net: not from a test
            for path in urls:
                got = c.get(path)
                assert got.status_code == 200, (path, got.text)
                assert got.content == WWW[next(k for k in WWW if k.endswith(path.rsplit("/", 1)[1]))]
        dgx1 = cli("render", "dgx-1", "ipxe").out
        assert "url=http://127.0.0.1:8080/images/dgx-1-example/dgx.seed" in dgx1  # {{ URL "..." }} translated
        assert "initrd http://127.0.0.1:8080/images/dgx-1-example/initrd.gz" in dgx1
        esxi = cli("render", "esxi", "ipxe").out
        assert "-c http://127.0.0.1:8080/images/esxi-example/boot.cfg" in esxi and "\ninitrd " not in esxi
    r = cli("render", "dgx-1", "preseed")
    assert r.code == 1 and "brings its own config" in r.err


def test_import_is_idempotent_and_dry_run_changes_nothing(cli, tmp_path: Path) -> None:
    www = _www(tmp_path / "www")
    nodes = tmp_path / "nodes.csv"
    nodes.write_text("hostname,mac,ip,tags,bmc_url,bmc_username,bmc_password\n"
                     "gpu01,d8:c4:97:00:00:01,10.0.0.21,a;b,https://10.0.1.21,admin,pw1\n"
                     "gpu02,5c:ff:35:00:00:02,,,,,\n")
    args = ("node", "import", str(MACHINES), str(nodes), "--files", str(www))
    r = cli(*args, "--dry-run")
    assert r.code == 0 and "would create node gpu01 (profile dgx-1-example)" in r.out, r
    assert "16 to create" in r.err and json.loads(cli("node", "list", "--json").out) == []
    assert [p for p in (tmp_path / "data" / "images").rglob("*") if p.is_file()] == []  # no blob stored
    assert cli(*args).code == 0
    listed = {n["hostname"]: n for n in json.loads(cli("node", "list", "--json").out)}
    assert listed["gpu01"]["profile"] == "dgx-1-example" and listed["gpu02"]["profile"] == "dgx-2-example"
    assert listed["gpu01"]["bmc"]["password_set"] and listed["gpu01"]["tags"] == ["a", "b"]
    before = cli("node", "show", "gpu01", "--json", "--events").out
    r = cli(*args)
    assert r.code == 0 and r.out == "" and "0 created, 0 updated, 16 unchanged" in r.err, r
    assert cli("node", "show", "gpu01", "--json", "--events").out == before  # not even an event
    nodes.write_text(nodes.read_text().replace("10.0.0.21,a;b", "10.0.0.31,a;b").replace("pw1", "pw2"))
    r = cli(*args, "--dry-run")
    assert "would update node gpu01 (bmc, ip)" in r.out and "1 to update" in r.err, r
    assert json.loads(cli("node", "show", "gpu01", "--json").out)["ip"] == "10.0.0.21"
    r = cli(*args)
    assert "updated node gpu01 (bmc, ip)" in r.out and "pw2" not in r.out + r.err
    assert json.loads(cli("node", "show", "gpu01", "--json").out)["ip"] == "10.0.0.31"


def test_every_bad_row_is_reported_and_nothing_is_written(cli, tmp_path: Path) -> None:
    www = _www(tmp_path / "www")
    (www / "dgx.seed").unlink()
    nodes = tmp_path / "nodes.csv"
    nodes.write_text("hostname,mac,ip\nok1,02:00:00:00:00:01,\nbad1,not-a-mac,\nbad2,02:00:00:00:00:03,1.2.3\n"
                     "dup,02:00:00:00:00:01,\n")
    bad_json = tmp_path / "machines.json"
    bad_json.write_text(json.dumps({"good": {"mac": "aa:.*", "kernel": "http://localhost:13370/k"},
                                    "badre": {"mac": "(", "kernel": "http://localhost:13370/k"},
                                    "two": {"mac": "bb.*", "kernel": "http://localhost:13370/k",
                                            "initrd": ["http://localhost:13370/a", "http://localhost:13370/b"]}}))
    r = cli("node", "import", str(MACHINES), str(nodes), str(bad_json), "--files", str(www))
    assert r.code == 1
    lines = r.err.strip().splitlines()
    assert lines[-1] == "dgxie: error: nothing imported: 9 error(s)", r.err
    for needle in ("nodes.csv row 3 (bad1): mac: 'not-a-mac' is not a MAC", "nodes.csv row 4 (bad2): ip:",
                   "nodes.csv row 5 (dup): MAC 02:00:00:00:00:01 is also in nodes.csv row 2",
                   "machines.json entry 'badre': mac is not a valid regex",
                   "machines.json entry 'two': 2 initrds",
                   "machines.json entry 'good': k: no such file under", "entry 'dgx-1-example': dgx.seed: no such file"):
        assert needle in r.err, (needle, r.err)
    assert json.loads(cli("node", "list", "--json").out) == []
    blobs = tmp_path / "data" / "images" / "blobs" / "sha256"
    assert not [p for p in blobs.rglob("*") if p.is_file()], "a failed import left image files behind"


def test_proxy_fetches_once_then_serves_from_the_store(cli, ctx: Context, dgxie_http) -> None:  # type: ignore[no-untyped-def]
    base, server = dgxie_http
    r = cli("node", "import", str(MACHINES), "--proxy", base)
    assert r.code == 0, r.err
    assert cli("node", "add", "dgx1", "--mac", "d8:c4:97:00:00:01").code == 0
    with TestClient(create_app(ctx)) as c:
        first = c.get("/images/dgx-1-example/linux")
        assert first.status_code == 200 and first.content == WWW["iso/install/netboot/ubuntu-installer/amd64/linux"]
        with db.session_scope(ctx.sessions) as s:
            pinned = dict(image_by_name(s, "dgx-1-example").files["linux"])
        assert pinned["url"] == f"{base}/iso/install/netboot/ubuntu-installer/amd64/linux"
        assert len(pinned["sha256"]) == 64 and pinned["size"] == len(first.content)
        server.shutdown()  # DGXIE switched off: what was fetched is still served
        again = c.get("/images/dgx-1-example/linux")
        assert again.status_code == 200 and again.content == first.content
        missing = c.get("/images/dgx-1-example/initrd.gz")  # never fetched, upstream gone: a clean 503
        assert missing.status_code == 503 and base in missing.json()["detail"]
    assert cli("node", "import", str(MACHINES), "--proxy", base).err.count("unchanged") == 1  # pinned = same


def test_dgxie_install_report_marks_the_node_installed(cli, ctx: Context, tmp_path: Path) -> None:
    www = _www(tmp_path / "www")
    assert cli("node", "import", str(MACHINES), "--files", str(www)).code == 0
    assert cli("node", "add", "dgx1", "--mac", "d8:c4:97:00:00:01", "--ip", "10.0.0.21").code == 0
    assert cli("node", "add", "plain", "--mac", "02:00:00:00:00:09", "--ip", "10.0.0.29").code == 0
    app = create_app(ctx)
    with TestClient(app, client=("10.0.0.99", 5000)) as stranger:
        r = stranger.post("/install", content="action=end", headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 404
    with TestClient(app, client=("10.0.0.29", 5000)) as not_external:
        assert not_external.post("/install", content="action=end").status_code == 404
    with TestClient(app, client=("10.0.0.21", 5000)) as node:
        assert node.post("/install", content="action=reboot").status_code == 422
        assert json.loads(cli("node", "show", "dgx1", "--json").out)["state"] == "enrolled"
        r = node.post("/install", content="action=end")  # DGXIE's late_command: curl -X POST -d action=end
        assert r.status_code == 200 and r.json()["state"] == "installed", r.text
        assert node.post("/install", content="action=end").json()["changed"] is False  # a replay
        assert node.post("/install", content="action=start").status_code == 409
    shown = json.loads(cli("node", "show", "dgx1", "--json", "--events").out)
    assert shown["state"] == "installed"
    assert any("action=end" in (e.get("reason") or "") for e in shown["events"])


def test_the_migration_guide_is_true(cli, config_file, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Every command in docs/migrating-from-dgxie.md's console blocks, run on DeepOps' files under
    their DeepOps names, prints the lines the guide shows (a line ending in `...` as a prefix)."""
    guide = (Path(__file__).parents[2] / "docs" / "migrating-from-dgxie.md").read_text()
    config_file(public_url="http://192.168.1.1:13370")
    site = tmp_path / "site"
    site.mkdir()
    (site / "machines.json").write_text(MACHINES.read_text())
    (site / "env").write_text(ENV.read_text())
    (site / "dnsmasq.extra.conf").write_text((REF / "dgxie-dnsmasq.extra.conf.example").read_text())
    www = _www(tmp_path / "www")
    monkeypatch.chdir(site)
    steps = console_steps(guide)
    assert len(steps) == 5
    for step in steps:
        assert step.command.startswith("dgxie "), step
        r = cli(*step.command.replace("/srv/dgxie-www", str(www)).split()[1:])
        assert r.code == 0, (step.command, r.err)
        assert not missing(step, r.out + r.err), (step, r.out + r.err)
