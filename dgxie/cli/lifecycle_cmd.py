"""`dgxie node reprovision|enroll|erase NODE` and `dgxie node watch NODE` (registered in dgxie/cli/__init__.py)."""

from __future__ import annotations

import time

import typer

from dgxie import events
from dgxie.cli.common import actor, console, context, err_console, session
from dgxie.errors import Unavailable
from dgxie.events import EventOut
from dgxie.nodes import service
from dgxie.nodes.enroll import enroll_node, erase_node
from dgxie.nodes.reprovision import reprovision_node
from dgxie.nodes.schemas import EnrollIn, ReprovisionOut

DONE = {"installed": 0, "bootstrapping": 0, "ready": 0, "failed": 1}


def reprovision(node: str = typer.Argument(..., help="hostname or MAC")) -> None:
    """Send NODE back to `enrolled` with a new boot token, so its next boot reinstalls it; with a BMC,
    set PXE for the next boot and power-cycle it (exit 1 if that fails: the node stays enrolled)."""
    ctx = context()
    out = reprovision_node(ctx.sessions, ctx.site, node, actor=actor(), hooks=ctx.reprovision)
    said(out, "it reinstalls at its next network boot")


def said(out: ReprovisionOut, then: str) -> None:
    """Report a committed reprovision or erase; exit 1 (one stderr line) when its BMC power cycle
    failed, saying that the node still does `then` at its next network boot."""
    cycle = out.power_cycle
    if cycle is not None and not cycle.ok:
        raise Unavailable(f"{cycle.error}; {out.hostname} stays {out.state}: {then} (boot it from the network by hand)")
    started = "; PXE set for the next boot and power cycled" if cycle is not None else ""
    err_console.print(f"{out.hostname}: {out.state}{started}; {then}", soft_wrap=True)


def enroll(node: str = typer.Argument(..., help="hostname or MAC"),
           profile: str = typer.Option(..., "--profile", help="the profile it installs"),
           hostname: str | None = typer.Option(None, "--hostname", help="rename it"),
           role: str | None = typer.Option(None, "--role", help="default: the profile's role"),
           ip: str | None = typer.Option(None, "--ip", help="a reserved address")) -> None:
    """Enroll the discovered NODE (its MACs and commissioning facts stay) with a profile."""
    ctx = context()
    out = enroll_node(ctx.sessions, ctx.site, node, EnrollIn(profile=profile, hostname=hostname, role=role, ip=ip),
                      actor=actor())
    err_console.print(f"{out.hostname}: {out.state} with profile {profile}; it installs at its next network boot")


def erase(node: str = typer.Argument(..., help="hostname or MAC")) -> None:
    """Wipe NODE's disks with the deploy agent at its next network boot; it returns to discovered."""
    ctx = context()
    out = erase_node(ctx.sessions, ctx.site, node, actor=actor(), hooks=ctx.reprovision)
    said(out, "the agent wipes its disks at its next network boot")


def line(ev: EventOut) -> str:
    move = f"{ev.from_state or ''}->{ev.to_state}" if ev.to_state else ""
    return f"{ev.time:%H:%M:%S} {ev.kind:<16} {move:<22} {ev.reason}"


def watch(node: str = typer.Argument(..., help="hostname or MAC"),
          timeout: float = typer.Option(3600, min=0.1, help="give up after this many seconds"),
          poll: float = typer.Option(1.0, min=0.05, help="seconds between polls"),
          history: int = typer.Option(10, min=0, help="print this many past events first")) -> None:
    """Follow NODE's events until it is installed (exit 0) or failed (exit 1); Ctrl-C stops."""
    with session() as s:
        n = service.get_node(s, node)
        past = events.list_events(s, node=n, limit=1000000)
    last = past[-1].id if past else 0
    for ev in past[-history:] if history else []:
        console.print(line(ev), highlight=False)
    deadline = time.monotonic() + timeout
    while True:
        with session() as s:
            n = service.get_node(s, node)
            batch = events.list_events(s, node=n, after_id=last, limit=1000)
            state, name = n.state, n.hostname
        for ev in batch:
            last = ev.id
            console.print(line(ev), highlight=False)
        if state in DONE:
            err_console.print(f"{name}: {state}")
            raise typer.Exit(DONE[state])
        if time.monotonic() >= deadline:
            raise Unavailable(f"{name}: still {state} after {timeout:g}s")
        time.sleep(poll)
