"""Scheduler coupling: a role's drain hook before disruptive work on a `ready` node, resume after.

Hooks are commands from the config (`roles.R.drain` / `roles.R.resume`), e.g.
``scontrol update nodename={hostname} state=drain reason=dgxie`` or ``kubectl cordon {hostname}``.
They run without a shell (`shlex.split`, then `{hostname}` is substituted in each word), so a
hostname can never inject a command. Output (bounded) goes into an event. A failing drain aborts
the operation (Conflict); resume runs after the operation, or when a drained node is ready again.
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dgxie.errors import Conflict, Invalid
from dgxie.events import record
from dgxie.handoff.procs import kill_tree
from dgxie.models import Event, Node
from dgxie.site import Site

KINDS = ("hook.drain", "hook.resume")


@dataclass(frozen=True)
class HookResult:
    ran: bool
    ok: bool = True
    rc: int | None = None
    output: str = ""


def hook_argv(command: str, hostname: str) -> list[str]:
    """The hook's argv with `{hostname}` filled in each word (pure)."""
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise Invalid(f"hook {command!r}: {exc}") from None
    if not words:
        raise Invalid("hook: empty command")
    return [w.replace("{hostname}", hostname) for w in words]


def run_hook(argv: list[str], *, timeout: float, tail_bytes: int) -> HookResult:
    """Run a hook in its own session; on timeout its whole tree is killed (no orphan holds the pipe)."""
    try:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
    except OSError as exc:
        return HookResult(ran=True, ok=False, rc=None, output=f"{argv[0]}: {exc.strerror}")
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(p.pid)
        out, _ = p.communicate()
        text = out.decode(errors="replace") + f"\ntimed out after {timeout:g}s"
        return HookResult(ran=True, ok=False, rc=None, output=text[-tail_bytes:])
    text = out.decode(errors="replace")
    return HookResult(ran=True, ok=p.returncode == 0, rc=p.returncode, output=text[-tail_bytes:])


def _run(session: Session, site: Site, node: Node, which: str, *, actor: str) -> HookResult:
    role = site.roles.get(node.role) if node.role else None
    command = getattr(role, which) if role is not None else None
    if not command:
        return HookResult(ran=False)
    res = run_hook(hook_argv(command, node.hostname), timeout=site.handoff.hook_timeout_seconds,
                   tail_bytes=site.handoff.output_tail_bytes)
    status = "ok" if res.ok else f"failed (exit {res.rc})" if res.rc is not None else "failed"
    data = {"ok": res.ok, "rc": res.rc, "command": command, "output_tail": res.output}
    if res.ok or which == "resume":
        record(session, actor=actor, kind=f"hook.{which}", node=node, reason=f"{which} hook {status}", data=data)
    else:
        # The caller's transaction is about to roll back; keep the failure on record anyway.
        with sessionmaker(bind=session.get_bind())() as side, side.begin():
            record(side, actor=actor, kind=f"hook.{which}", node=side.get(Node, node.id),
                   reason=f"{which} hook {status}", data=data)
    return res


def drain(session: Session, site: Site, node: Node, actor: str) -> HookResult:
    """Before reprovision / firmware update of a `ready` node: run its role's drain hook.

    No-op for other states or roles without a hook. Raises Conflict when the hook fails.
    """
    if node.state != "ready":
        return HookResult(ran=False)
    res = _run(session, site, node, "drain", actor=actor)
    if not res.ok:
        last = next((ln for ln in reversed(res.output.splitlines()) if ln.strip()), "no output")
        raise Conflict(f"{node.hostname}: drain hook failed ({last[:200]}); nothing was changed")
    return res


def resume(session: Session, site: Site, node: Node, actor: str) -> HookResult:
    """After the operation: run the role's resume hook (a failure is recorded, not raised)."""
    return _run(session, site, node, "resume", actor=actor)


def drained(session: Session, node: Node) -> bool:
    """True when the node's last hook event is a successful drain (or a resume that failed)."""
    ev = session.scalar(select(Event).where(Event.node_id == node.id, Event.kind.in_(KINDS))
                        .order_by(Event.id.desc()).limit(1))
    if ev is None:
        return False
    ok = bool(ev.data.get("ok", False))
    return ok if ev.kind == "hook.drain" else not ok


def resume_if_drained(session: Session, site: Site, node: Node, *, actor: str) -> HookResult:
    """A reprovisioned node that was drained is resumed when it is ready again."""
    session.flush()
    if not drained(session, node):
        return HookResult(ran=False)
    return resume(session, site, node, actor)


def _hook_or_conflict(site: Site, node: Node, which: str) -> None:
    role = site.roles.get(node.role) if node.role else None
    if role is None or not getattr(role, which):
        raise Conflict(f"{node.hostname}: role {node.role or '(none)'} has no {which} hook (roles.ROLE.{which})")


def drain_now(session: Session, site: Site, node: Node, *, actor: str) -> HookResult:
    """An operator's drain (the API's POST /nodes/{ref}/drain): run the role's drain hook whatever
    the node's state. Conflict when the role has no drain hook, or when the hook fails (the failure
    is recorded as a `hook.drain` event all the same)."""
    _hook_or_conflict(site, node, "drain")
    res = _run(session, site, node, "drain", actor=actor)
    if not res.ok:
        last = next((ln for ln in reversed(res.output.splitlines()) if ln.strip()), "no output")
        raise Conflict(f"{node.hostname}: drain hook failed ({last[:200]})")
    return res


def resume_now(session: Session, site: Site, node: Node, *, actor: str) -> HookResult:
    """An operator's resume: run the role's resume hook. Conflict when the role has none; a failing
    hook is recorded and returned (`ok` false: the node stays drained)."""
    _hook_or_conflict(site, node, "resume")
    return _run(session, site, node, "resume", actor=actor)
