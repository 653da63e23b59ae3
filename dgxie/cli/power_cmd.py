"""`dgxie node power NODE on|off|cycle|status`, its bulk form `dgxie node power on|off|cycle --all |
--tag T | --state S [--batch N] [--interval SECONDS]`, and `dgxie node bootdev NODE pxe|disk`
(registered in dgxie/cli/__init__.py).

The two power forms share one command: two arguments are `NODE ACTION` (one node, as always); one
argument is an `ACTION` for the nodes a selector picks, powered in waves (`dgxie.nodes.power_waves`).
A selector with two arguments, or one argument without a selector, is an error (exit 1)."""

from __future__ import annotations

import sys

import typer

from dgxie.bmc.base import POWER_TARGET
from dgxie.cli.common import actor, context, dump_json, err_console, session, site
from dgxie.errors import Invalid
from dgxie.nodes import power as power_svc
from dgxie.nodes import power_waves, service
from dgxie.nodes.power_waves import PowerJobOut, PowerNodeOut, PowerSelector
from dgxie.nodes.schemas import PowerOut, PowerStatusOut

BATCH, INTERVAL = 20, 10.0


def power(node: str = typer.Argument(..., metavar="NODE|ACTION",
                                     help="one node: its hostname or MAC, then ACTION; bulk: the ACTION "
                                          "(on | off | cycle) with --all, --tag or --state"),
          action: str | None = typer.Argument(None, metavar="[ACTION]", show_default=False,
                                              help="one node: on | off | cycle | status"),
          all_nodes: bool = typer.Option(False, "--all", help="bulk: every node"),
          tag: list[str] = typer.Option([], "--tag", help="bulk: the nodes with this tag (repeat: with every tag)"),
          state: list[str] = typer.Option([], "--state", help="bulk: the nodes in this state (repeat: any of them)"),
          batch: int | None = typer.Option(None, "--batch", help=f"bulk: nodes per wave (default {BATCH})"),
          interval: float | None = typer.Option(None, "--interval",
                                                help=f"bulk: seconds between wave starts (default {INTERVAL:g})"),
          as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Power a node on, off or cycle it through its BMC (Redfish or IPMI), or read its state; or
    power many nodes in waves (`dgxie node power on --all --batch 50 --interval 30`)."""
    selectors = [k for k, on in (("--all", all_nodes), ("--tag", bool(tag)), ("--state", bool(state))) if on]
    if action is None:
        if len(selectors) != 1:
            raise Invalid("give NODE ACTION for one node, or ACTION with one of --all, --tag T, --state S"
                          if not selectors else f"use one selector, not {' and '.join(selectors)}")
        sel = PowerSelector(kind="all") if all_nodes else (
            PowerSelector(kind="tags", values=tag) if tag else PowerSelector(kind="state", values=state))
        bulk(node, sel, BATCH if batch is None else batch, INTERVAL if interval is None else interval, as_json)
        return
    if selectors or batch is not None or interval is not None:
        extra = selectors + ["--batch"] * (batch is not None) + ["--interval"] * (interval is not None)
        raise Invalid(f"{' '.join(extra)}: not with a NODE "
                      f"(bulk form: dgxie node power {action} --all|--tag T|--state S)")
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


def bulk(action: str, sel: PowerSelector, batch: int, interval: float, as_json: bool) -> None:
    """Power the selected nodes in waves; each wave's nodes are printed as the wave ends (to
    stderr with --json, whose stdout is the job). Exit 1 if any node failed."""
    ctx = context()
    with session() as s:
        job = power_waves.plan(s, sel, action, batch, interval)
    out = sys.stderr if as_json else sys.stdout

    def started(k: int, rows: list[PowerNodeOut]) -> None:
        print(f"wave {k}/{job.waves}: power {action} {len(rows)} node(s): {' '.join(r.node for r in rows)}",
              file=out, flush=True)

    def done(k: int, rows: list[PowerNodeOut]) -> None:
        for r in rows:
            print(f"  {row_said(job, r)}", file=out, flush=True)

    skipped = [r.node for r in job.nodes if r.status == "skipped"]
    if skipped:
        print(f"skipped (no BMC): {' '.join(skipped)}", file=out, flush=True)
    power_waves.run(ctx.sessions, ctx.site, job, actor=actor(), metrics=ctx.boot_metrics,
                    hooks=power_waves.Hooks(wave_started=started, wave_done=done))
    print(summary(job), file=out, flush=True)
    if as_json:
        dump_json(job)
    if job.count("failed"):
        print(f"dgxie: error: power {action}: {job.count('failed')} node(s) failed", file=sys.stderr)
        raise typer.Exit(1)


def row_said(job: PowerJobOut, r: PowerNodeOut) -> str:
    if r.status == "failed":
        return f"{r.node}: power {job.action} failed: {r.reason}"
    if r.status == "done":
        return f"{r.node}: power {job.action} done; the BMC reports {r.power}"
    return f"{r.node}: power {job.action} {r.status}" + (f"; the BMC still reports {r.power}" if r.power else "")


def summary(job: PowerJobOut) -> str:
    counts = ", ".join(f"{job.count(k)} {k}" for k in ("done", "requested", "failed", "skipped", "pending"))
    return f"power {job.action}: {len(job.nodes)} node(s) in {job.waves_started}/{job.waves} wave(s): {counts}"


def bootdev(node: str = typer.Argument(..., help="hostname or MAC"),
            device: str = typer.Argument(..., help="pxe | disk (next boot only)")) -> None:
    """Set the boot device for the next boot only."""
    with session() as s:
        out = power_svc.boot_once(s, site(), service.get_node(s, node), device, actor=actor())
    err_console.print(f"{out.node}: next boot from {out.boot}")
