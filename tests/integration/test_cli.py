"""The `dgxie` CLI against SQLite and PostgreSQL: same service layer, same validation, same events."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.paths import SHARED


def test_node_lifecycle_commands(cli, tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("bmc-secret-1\n")
    r = cli("node", "add", "dgx01", "--mac", "AA-BB-CC-00-00-01", "--ip", "10.0.0.11", "--tag", "rack1",
            "--extra-mac", "aabb.cc00.0101", "--bmc", "https://10.0.1.11", "--bmc-user", "admin",
            "--bmc-password-file", str(pw), "--json")
    assert r.code == 0, r.err
    node = json.loads(r.out)
    assert node["mac"] == "aa:bb:cc:00:00:01" and node["bmc"]["password_set"] is True
    assert "bmc-secret-1" not in r.out + r.err
    r = cli("node", "show", "aa:bb:cc:00:01:01", "--json", "--events")
    shown = json.loads(r.out)
    assert shown["hostname"] == "dgx01" and shown["events"][0]["actor"].startswith("cli:")
    assert "bmc-secret-1" not in r.out
    r = cli("node", "set", "dgx01", "--role", "slurmd", "--tag", "rack2", "--tag", "h100", "--json")
    assert r.code == 0 and json.loads(r.out)["tags"] == ["h100", "rack2"]
    assert json.loads(cli("node", "list", "--json", "--role", "slurmd").out)[0]["hostname"] == "dgx01"
    assert json.loads(cli("node", "list", "--json", "--tag", "rack1").out) == []
    r = cli("node", "list")
    assert r.code == 0 and "dgx01" in r.out
    assert cli("node", "delete", "dgx01").code == 0
    assert json.loads(cli("node", "list", "--json").out) == []


def test_bad_input_is_one_line_and_exit_1(cli) -> None:
    assert cli("node", "add", "n1", "--mac", "02:00:00:00:00:01").code == 0
    cases = [
        (("node", "add", "n2", "--mac", "02:00:00:00:00:01"), "MAC 02:00:00:00:00:01 belongs to node n1"),
        (("node", "add", "n2", "--mac", "nope"), "is not a MAC address"),
        (("node", "add", "n2", "--mac", "02:00:00:00:00:02", "--profile", "x"), "unknown profile 'x'"),
        (("node", "add", "N_2", "--mac", "02:00:00:00:00:02"), "not a valid hostname"),
        (("node", "add", "n2", "--mac", "02:00:00:00:00:02", "--bmc-password-file", "/nonexistent"),
         "No such file"),
        (("node", "show", "ghost"), "no node 'ghost'"),
        (("node", "set", "n1"), "nothing to change"),
        (("node", "list", "--state", "weird"), "unknown state"),
        (("node", "frobnicate"), "No such command"),
        (("node", "add"), "Missing argument"),
        (("token", "create", "--role", "root", "--name", "x"), "role"),
    ]
    for args, needle in cases:
        r = cli(*args)
        assert r.code == 1, (args, r)
        assert needle in r.err, (args, r.err)
        assert len(r.err.strip().splitlines()) == 1, (args, r.err)
        assert "Traceback" not in r.err
    assert [n["hostname"] for n in json.loads(cli("node", "list", "--json").out)] == ["n1"]


def test_token_create_prints_once(cli) -> None:
    r = cli("token", "create", "--role", "admin", "--name", "root")
    assert r.code == 0 and r.out.strip().startswith("dgxie_")
    listed = cli("token", "list", "--json").out
    assert r.out.strip() not in listed and '"root"' in listed
    assert cli("token", "create", "--role", "admin", "--name", "root").code == 1


def test_import_all_or_nothing(cli, tmp_path: Path) -> None:
    good = tmp_path / "nodes.csv"
    good.write_text("hostname,mac,ip,role,tags,bmc_url,bmc_username,bmc_password\n"
                    "gpu01,d8:c4:97:00:00:01,10.0.0.21,slurmd,a;b,https://10.0.1.21,admin,pw1\n"
                    "gpu02,d8:c4:97:00:00:02,10.0.0.22,,,,,\n")
    bad = tmp_path / "more.yaml"
    bad.write_text("- {hostname: gpu03, mac: '02:00:00:00:00:03'}\n- {hostname: gpu04, mac: 'd8:c4:97:00:00:01'}\n")
    r = cli("node", "import", str(good), str(bad))
    assert r.code == 1 and "more.yaml entry 2 (gpu04): MAC d8:c4:97:00:00:01 is also in nodes.csv row 2" in r.err
    assert json.loads(cli("node", "list", "--json").out) == []
    machines = SHARED / "reference/deepops/dgxie-machines.example.json"
    r = cli("node", "import", str(machines), str(good), "--proxy", "http://192.168.1.1:13370")
    assert r.code == 0, r.err
    nodes = {n["hostname"]: n for n in json.loads(cli("node", "list", "--json").out)}
    assert nodes["gpu01"]["profile"] == "dgx-1-example"  # d8:c4:97.* from DGXIE's machines.json
    assert nodes["gpu01"]["bmc"]["password_set"] and nodes["gpu01"]["tags"] == ["a", "b"]
    dns = tmp_path / "dnsmasq.conf"
    dns.write_text("# site hosts\ndhcp-host=02:00:00:00:00:0a,login01,10.0.0.5\ndhcp-host=02:00:00:00:00:0b,10.0.0.6\n")
    assert cli("node", "import", str(dns)).code == 0
    nodes = {n["hostname"]: n for n in json.loads(cli("node", "list", "--json").out)}
    assert nodes["login01"]["ip"] == "10.0.0.5" and nodes["node-02000000000b"]["ip"] == "10.0.0.6"
    r = cli("node", "import", str(dns))  # again: nothing changes, and it says so
    assert r.code == 0 and "0 created, 0 updated, 2 unchanged" in r.err, r
    dns.write_text("dhcp-host=02:00:00:00:00:0c,login01,10.0.0.7\n")  # login01's name on another MAC
    r = cli("node", "import", str(dns))
    assert r.code == 1 and "dnsmasq.conf line 1 (login01): hostname login01 is already enrolled" in r.err


def test_node_import_loads_no_server_wiring_and_still_checks_roles(config_file, tmp_path: Path) -> None:
    """`dgxie node import` takes the site, not the whole server's wiring (compose.root: the job worker,
    BMC drivers, mirrors, the change listener), yet refuses a config whose role template is missing."""
    import os
    import subprocess
    import sys

    csv = tmp_path / "n.csv"
    csv.write_text("hostname,mac,role,tags\nn1,02:00:00:00:00:01,k8s-worker,rack1\nn2,02:00:00:00:00:02,,\n")
    code = ("import sys\nfrom dgxie.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n"
            "    print('RC', e.code, sorted(m for m in ('dgxie.compose.root', 'dgxie.changes', "
            "'dgxie.firmware.update_worker') if m in sys.modules))")

    def run(cfg: Path) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DGXIE_")} | {"DGXIE_CONFIG": str(cfg)}
        return subprocess.run([sys.executable, "-c", code, "node", "import", str(csv)], env=env,
                              capture_output=True, text=True, timeout=120, check=False)

    r = run(config_file())
    assert r.stdout.splitlines() == ["created node n1", "created node n2", "RC 0 []"], (r.stdout, r.stderr)
    assert r.stderr.endswith("2 created, 0 updated, 0 unchanged\n"), r.stderr
    cloudy = {"bootstrap": "cloud-init", "script": "no-such-template.j2", "groups": ["cloudy"]}
    r = run(config_file(roles={"cloudy": cloudy}))
    assert "roles.cloudy.script: template no-such-template.j2 not found" in r.stderr, r.stderr
    assert r.stdout.strip().startswith("RC 1"), r.stdout
