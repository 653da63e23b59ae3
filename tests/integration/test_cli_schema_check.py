"""The CLI checks the schema with one query instead of running Alembic on every command (issue 14):
a database with no schema gets it, one at another revision is one error line and exit 1, and
`SCHEMA_HEAD` is the head of the shipped migrations."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import yaml
from alembic.script import ScriptDirectory
from sqlalchemy import text

from dgxie import db
from tests.support.paths import REPO


def _dgxie(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DGXIE_")} | {"PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "dgxie", "--config", str(cfg), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


def test_schema_head_is_the_migrations_head() -> None:
    heads = ScriptDirectory.from_config(db.alembic_config("sqlite://")).get_heads()
    assert heads == [db.SCHEMA_HEAD]


def test_fresh_database_is_created_and_an_old_one_is_one_error_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/d.db"
    cfg = tmp_path / "dgxie.yaml"
    cfg.write_text(yaml.safe_dump({"database_url": url, "data_dir": str(tmp_path / "data")}))
    r = _dgxie(cfg, "node", "list", "-o", "json")
    assert (r.returncode, r.stdout.strip(), r.stderr) == (0, "[]", "")
    assert db.schema_revision(db.make_engine(url)) == db.SCHEMA_HEAD

    old = f"sqlite:///{tmp_path}/old.db"
    db.upgrade(old, "0010")
    cfg.write_text(yaml.safe_dump({"database_url": old, "data_dir": str(tmp_path / "data")}))
    r = _dgxie(cfg, "node", "list")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == (f"dgxie: error: the database schema is at revision 0010, this dgxie needs {db.SCHEMA_HEAD}: "
                        "run `dgxie db upgrade` (or start `dgxie serve`, which upgrades)\n")
    assert db.schema_revision(db.make_engine(old)) == "0010"  # nothing migrated behind the operator's back
    assert _dgxie(cfg, "db", "upgrade").returncode == 0
    assert _dgxie(cfg, "node", "list").returncode == 0

    engine = db.make_engine(old)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    r = _dgxie(cfg, "node", "list")
    assert r.returncode == 1
    assert r.stderr == (f"dgxie: error: the database schema (revision 0099) is newer than this dgxie "
                        f"({db.SCHEMA_HEAD}): run the dgxie that upgraded it\n")


def test_a_command_leaves_the_sqlite_file_complete(tmp_path: Path) -> None:
    """A command closes its connections before it exits, so SQLite merges the write-ahead log into
    the database file: copying `dgxie.db` alone (a backup, the deploy e2e's builder cache) holds
    what the command wrote. (Before, the image a `dgxie image build` registered was still only in
    `dgxie.db-wal`.)"""
    db_file = tmp_path / "d.db"
    cfg = tmp_path / "dgxie.yaml"
    cfg.write_text(yaml.safe_dump({"database_url": f"sqlite:///{db_file}", "data_dir": str(tmp_path / "data")}))
    (tmp_path / "k").write_bytes(b"kernel")
    (tmp_path / "i").write_bytes(b"initrd")
    for args in (("node", "add", "n1", "--mac", "02:00:00:00:00:01"),
                 ("image", "add", "img", "--kernel", str(tmp_path / "k"), "--initrd", str(tmp_path / "i"))):
        r = _dgxie(cfg, *args)
        assert r.returncode == 0, r.stderr
        assert not (tmp_path / "d.db-wal").exists() or (tmp_path / "d.db-wal").stat().st_size == 0, args
    copy = tmp_path / "copy.db"
    copy.write_bytes(db_file.read_bytes())
    with sqlite3.connect(copy) as conn:
        assert conn.execute("SELECT hostname FROM nodes").fetchall() == [("n1",)]
        assert conn.execute("SELECT name FROM images").fetchall() == [("img",)]
