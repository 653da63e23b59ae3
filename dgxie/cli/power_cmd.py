"""`dgxie node power NODE on|off|cycle|status` and `dgxie node bootdev NODE pxe|disk` (registered in
dgxie/cli/__init__.py)."""

from __future__ import annotations

import typer

from dgxie.bmc.base import POWER_TARGET
from dgxie.cli.common import actor, dump_json, err_console, session, site
from dgxie.nodes import power as power_svc
from dgxie.nodes import service
from dgxie.nodes.schemas import PowerOut, PowerStatusOut


def power(node: str = typer.Argument(..., help="hostname or MAC"),
          action: str = typer.Argument(..., help="on | off | cycle | status"),
          as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Power a node on, off or cycle it through its BMC (Redfish or IPMI), or read its state."""
    with session() as s:
        n = service.get_node(s, node)
        out: PowerStatusOut | PowerOut
        if action == "status":
            out = power_svc.power_status(site(), n)
        else:
            out = power_svc.power(s, site(), n, action, actor=actor())
    if as_json:
        dump_json(out)
    else:
        print(said(out))


def said(out: PowerStatusOut | PowerOut) -> str:
    """What happened, in words: the state, or the action and whether the BMC reports its end state
    yet (BMCs apply a reset seconds later; the action is not repeated or waited for)."""
    if isinstance(out, PowerStatusOut):
        return f"{out.node}: power {out.power}"
    if out.power == POWER_TARGET[out.action]:
        return f"{out.node}: power {out.action} done; the BMC reports {out.power}"
    return (f"{out.node}: power {out.action} requested; the BMC still reports {out.power} "
            f"(it may take a while: dgxie node power {out.node} status)")


def bootdev(node: str = typer.Argument(..., help="hostname or MAC"),
            device: str = typer.Argument(..., help="pxe | disk (next boot only)")) -> None:
    """Set the boot device for the next boot only."""
    with session() as s:
        out = power_svc.boot_once(s, site(), service.get_node(s, node), device, actor=actor())
    err_console.print(f"{out.node}: next boot from {out.boot}")
