"""docs/operator-guide.md, "Day one, command by command", run as written: from an empty data
directory (the default SQLite database in it), DeepOps' real DGXIE files under their DeepOps names,
the DGX H100 Redfish capture served by sushy-static as the BMC, and the shipped inventory script
under a PATH without dgxie. Every line the guide shows must be printed; no command may print a
Python warning or a traceback.

Two things differ from a real site, both substitutions in the commands: the BMC URL
(`https://10.0.1.11` -> sushy-static's `http://127.0.0.1:PORT`, so the test config sets
`bmc.allow_insecure_http`), and `/srv/dgxie-www` -> a temporary copy of DGXIE's HTTP root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.integration.test_dgxie_import import ENV, MACHINES, REF, _www
from tests.support.bmc import DGX_MOCKUP, sushy_static
from tests.support.doc_console import console_steps, missing
from tests.support.paths import REPO

GUIDE = REPO / "docs" / "operator-guide.md"
VENV_BIN = Path(sys.executable).parent
CLEAN_PATH = "/usr/bin:/bin"


def _site(tmp: Path) -> Path:
    """The operator's directory: DGXIE's files under DeepOps' names, the BMC password, and a
    checkout's `scripts/dgxie-inventory` beside a `.venv/bin/dgxie` (this test's own)."""
    site = tmp / "site"
    (site / "scripts").mkdir(parents=True)
    shutil.copy2(MACHINES, site / "machines.json")
    shutil.copy2(ENV, site / "env")
    shutil.copy2(REF / "dgxie-dnsmasq.extra.conf.example", site / "dnsmasq.extra.conf")
    shutil.copy2(REPO / "scripts" / "dgxie-inventory", site / "scripts" / "dgxie-inventory")
    (site / ".venv" / "bin").mkdir(parents=True)
    (site / ".venv" / "bin" / "dgxie").symlink_to(VENV_BIN / "dgxie")
    (site / "bmc.pw").write_text("bmc-password\n")
    (site / "bmc.pw").chmod(0o600)
    return site


def test_day_one_as_the_guide_says(tmp_path: Path) -> None:
    site = _site(tmp_path)
    www = _www(tmp_path / "www")
    config = tmp_path / "dgxie.yaml"
    config.write_text(yaml.safe_dump({"data_dir": str(tmp_path / "var"), "bmc": {"allow_insecure_http": True}}))
    steps = console_steps(GUIDE.read_text(), section="## Day one, command by command")
    assert len(steps) == 11, [s.command for s in steps]
    base_env = {k: os.environ[k] for k in ("HOME", "LANG") if k in os.environ}
    base_env |= {"DGXIE_CONFIG": str(config), "PYTHONPATH": str(REPO), "COLUMNS": "100"}
    with sushy_static(DGX_MOCKUP, tmp_path) as bmc:
        for step in steps:
            command = step.command.replace("https://10.0.1.11", bmc).replace("/srv/dgxie-www", str(www))
            env = base_env | {"PATH": f"{VENV_BIN}:{CLEAN_PATH}"}  # the virtualenv active
            if "ansible-inventory" in command:  # Ansible's own, with no dgxie on PATH
                command = command.replace("ansible-inventory", str(VENV_BIN / "ansible-inventory"))
                env["PATH"] = CLEAN_PATH
            r = subprocess.run(["bash", "-c", command], cwd=site, env=env, capture_output=True, text=True,
                               timeout=300, check=False)
            out = r.stdout + r.stderr
            assert r.returncode == 0, (step.command, out)
            assert not missing(step, out), (step.command, missing(step, out), out)
            assert "Traceback" not in out and "Warning:" not in out, (step.command, out)
    assert not (tmp_path / "var" / "dgxie.db").stat().st_mode & 0o077  # the default database, 0600
