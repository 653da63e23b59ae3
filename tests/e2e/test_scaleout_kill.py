"""Several instances on one PostgreSQL, one killed (issue 15, "How it is proven"), small size:
three real `dgxie serve` (api + the DHCP HA pair boot-a/boot-b in namespaces on one bridge),
400 perfdhcp clients, 20 API clients enrolling and reading nodes, 6 firmware update jobs against
fake Redfish BMCs; the boot instance running a firmware job is SIGKILLed mid-run.

Checked (tests/support/scaleout.py `check`): no address given to two MACs (sniffed ACKs and
`dhcp_leases`); every enroll acknowledged with 201 is in the database; no queue job ran twice but
the killed instance's, which another instance took over within 30 s; no BMC got a second update
Task; the survivor ACKed a dead server's client, and a dhclient of the dead server bound, within
10 s of the kill. The full size is `make bench-scaleout` (bench/scaleout/run.py). About 60 s.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from tests.support import scaleout

pytestmark = [pytest.mark.e2e, pytest.mark.postgres,
              pytest.mark.skipif(os.geteuid() != 0 or shutil.which("perfdhcp") is None
                                 or shutil.which("dhclient") is None or shutil.which("ip") is None
                                 or not (scaleout.PG_SOCKET / ".s.PGSQL.5432").exists(),
                                 reason="needs root, kea-admin (perfdhcp), isc-dhcp-client, iproute2 and "
                                        "PostgreSQL's Unix socket (.ci/apt-packages.txt)")]


def test_three_instances_one_killed(tmp_path: Path) -> None:
    fig = scaleout.run(tmp_path, scaleout.Size(dhcp_clients=400, api_clients=20, updates=6))
    print("\nscale-out:", json.dumps(fig))
    scaleout.check(fig)
