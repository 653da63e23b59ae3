"""One of two processes creating the same discovered MACs at once (tests/integration/test_discovery_race.py):

    python -m tests.support.discover_race DB_URL DATA_DIR START_AT COUNT

Waits until the wall clock reaches START_AT, then creates `02:00:00:00:xx:xx` (COUNT MACs) as
discovered nodes the way the DHCP sync does (`dhcpsync.discovery.create_discovered`, one batch
per transaction; a batch that loses a unique-constraint race is tried again, as the sync requeues
it). Prints "MADE RETRIES".
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from sqlalchemy.exc import IntegrityError

from dgxie import db
from dgxie.compose.site import build_site
from dgxie.config import Settings
from dgxie.dhcpsync.discovery import create_discovered
from dgxie.errors import Conflict


def main(url: str, data_dir: str, start_at: float, count: int) -> None:
    site = build_site(Settings(database_url=url, data_dir=Path(data_dir)))
    sessions = db.session_factory(db.make_engine(url))
    macs = [bytes([2, 0, 0, 0, i >> 8, i & 255]) for i in range(count)]
    time.sleep(max(start_at - time.time(), 0))
    made = retries = 0
    while macs and retries < 100:
        try:
            with db.session_scope(sessions) as s:
                n, macs = create_discovered(s, site, macs, budget=30)
            made += n
        except (IntegrityError, Conflict):  # the lost race, as nodes.bulk reports it
            retries += 1
    print(made, retries)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
