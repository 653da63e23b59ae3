"""`dgxie node reprovision NODE` and `dgxie node watch NODE` (registered onto the `node` app)."""

from __future__ import annotations

import time

import typer

from dgxie import events
from dgxie.cli.common import actor, console, context, err_console, session
from dgxie.cli.node_cmd import app as node_app
from dgxie.errors import Unavailable
from dgxie.events import EventOut
from dgxie.nodes import lifecycle, service

DONE = {"installed": 0, "bootstrapping": 0, "ready": 0, "failed": 1}


def hooks() -> lifecycle.ReprovisionHooks:
    hk = context().extras.setdefault("reprovision_hooks", lifecycle.ReprovisionHooks())
    assert isinstance(hk, lifecycle.ReprovisionHooks)
    return hk


@node_app.command("reprovision")
def reprovision(node: str) -> None:
    """Send NODE back to `enrolled` with a new boot token, so its next boot reinstalls it."""
    hk = hooks()
    with session() as s:
        n = lifecycle.reprovision(s, context().site, service.get_node(s, node), actor=actor(), hooks=hk)
        name, state = n.hostname, n.state
    lifecycle.run_after_reprovision(context().sessions, context().site, name, actor=actor(), hooks=hk)
    err_console.print(f"{name}: {state}; it reinstalls at its next network boot")


def line(ev: EventOut) -> str:
    move = f"{ev.from_state or ''}->{ev.to_state}" if ev.to_state else ""
    return f"{ev.time:%H:%M:%S} {ev.kind:<16} {move:<22} {ev.reason}"


@node_app.command("watch")
def watch(node: str, timeout: float = typer.Option(3600, min=0.1, help="give up after this many seconds"),
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
