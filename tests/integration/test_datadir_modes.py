"""The data directory and its secret-bearing files are private, and loosened ones are named at
start (issue 12, item 4). A real data dir, the real `dgxie` in a subprocess, under umask 022 (the
usual default, which made the database 0644 in a 0755 directory before)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from sqlalchemy import text

from dgxie import db


def _dgxie(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DGXIE_")} | {"DGXIE_CONFIG": str(cfg)}
    return subprocess.run([sys.executable, "-m", "dgxie", *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False, preexec_fn=lambda: os.umask(0o022))


def _mode(p: Path) -> int:
    return p.stat().st_mode & 0o777


def test_data_dir_and_secrets_are_created_private_and_loosened_ones_are_named(tmp_path: Path) -> None:
    data = tmp_path / "data"
    dbfile = data / "dgxie.db"
    cfg = tmp_path / "dgxie.yaml"
    cfg.write_text(yaml.safe_dump({"database_url": f"sqlite:///{dbfile}", "data_dir": str(data)}))

    r = _dgxie(cfg, "db", "upgrade")
    assert r.returncode == 0, r.stderr
    assert "warning" not in r.stderr
    assert (_mode(data), _mode(dbfile)) == (0o700, 0o600)
    r = _dgxie(cfg, "node", "add", "n1", "--mac", "02:00:00:00:0e:01")  # first start: the secret key
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
    assert _mode(data / "secret.key") == 0o600

    old = os.umask(0o022)
    try:  # SQLite's journal files while a writer holds the database open: the database's mode
        engine = db.make_engine(f"sqlite:///{dbfile}")
        with engine.begin() as conn:
            conn.execute(text("UPDATE nodes SET role = NULL"))
            assert {s: _mode(dbfile.with_name("dgxie.db" + s)) for s in ("-wal", "-shm")} == {"-wal": 0o600, "-shm": 0o600}
        engine.dispose()
    finally:
        os.umask(old)

    os.chmod(data, 0o755)
    os.chmod(dbfile, 0o644)
    for args in (("node", "list"), ("db", "upgrade")):
        r = _dgxie(cfg, *args)
        assert r.returncode == 0, r.stderr
        lines = [ln for ln in r.stderr.splitlines() if "lets other local users read it" in ln]
        assert len(lines) == 2, r.stderr
        assert lines[0].endswith(f"{data}: mode 755 lets other local users read it (the data directory); chmod 700 it")
        assert lines[1].endswith(f"{dbfile}: mode 644 lets other local users read it (holds secrets); chmod 600 it")
    assert (_mode(data), _mode(dbfile)) == (0o755, 0o644)  # named, not changed behind the operator's back

    os.chmod(data, 0o700)
    os.chmod(dbfile, 0o600)
    r = _dgxie(cfg, "node", "list")
    assert r.returncode == 0 and "warning" not in r.stderr, r.stderr
    # a config file holding a secret (here the key itself) readable by others is named too
    key = (data / "secret.key").read_text().strip()
    cfg.write_text(yaml.safe_dump({"database_url": f"sqlite:///{dbfile}", "data_dir": str(data), "secret_key": key}))
    os.chmod(cfg, 0o644)
    r = _dgxie(cfg, "node", "list")
    assert r.returncode == 0 and r.stderr.count("lets other local users read it") == 1, r.stderr
    assert f"{cfg}: mode 644 lets other local users read it (holds secrets); chmod 600 it" in r.stderr
    cfg.write_text(yaml.safe_dump({"database_url": f"sqlite:///{dbfile}", "data_dir": str(data)}))

    os.chmod(data / "secret.key", 0o644)  # the key itself is refused outright, as before
    r = _dgxie(cfg, "node", "list")
    assert r.returncode == 1 and "secret.key: mode 644" in r.stderr and r.stderr.count("\n") == 1, r.stderr
