"""Discovery across instances: two processes creating the same discovered MACs at the same moment
make one node per MAC (the unique MAC constraint arbitrates; the loser's batch is retried and then
skips what exists). PostgreSQL: several instances share it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from dgxie import db
from dgxie.models import Interface, Node

COUNT = 300


def test_two_processes_one_node_per_mac(tmp_path: Path, pg_database: str) -> None:
    from tests.conftest import _truncate

    _truncate(pg_database)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DGXIE_")}
    start_at = time.time() + 4  # both are past their imports by then
    procs = [subprocess.Popen([sys.executable, "-m", "tests.support.discover_race", pg_database,
                               str(tmp_path / f"d{i}"), str(start_at), str(COUNT)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for i in (1, 2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    made = [int(o[0].split()[0]) for o in outs]
    assert sum(made) == COUNT, made  # every MAC created once, by one of them
    engine = db.make_engine(pg_database)
    try:
        with engine.connect() as c:
            assert c.scalar(select(func.count()).select_from(Node)) == COUNT
            assert c.scalar(select(func.count(func.distinct(Interface.mac)))) == COUNT
            assert c.scalar(select(func.count()).select_from(Interface)) == COUNT
    finally:
        engine.dispose()
