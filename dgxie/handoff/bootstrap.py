"""Bootstrap of an installed node by its role's method: `cloud-init` scripts, `none`, and the outcome.

`cloud-init`: the install config (user-data) runs `fetch_command()` at first boot. That GETs
`/boot/n/{token}/bootstrap` (`serve_script`), which moves the node installed -> bootstrapping and
answers the role's script rendered for this node only, with the secrets its role may receive. The
script reports back to `/boot/n/{token}/bootstrap/done` (`finish`): bootstrapping -> ready | failed.
`none`: `on_installed()` moves installed -> ready at once. `ansible`: see `runner.py`.
"""

from __future__ import annotations

import shlex
from typing import Any

import jinja2
from sqlalchemy import select
from sqlalchemy.orm import Session

from dgxie.boot import templates
from dgxie.boot.state import State
from dgxie.errors import Conflict, NotFound, Unavailable
from dgxie.handoff import hooks, secrets
from dgxie.handoff.records import flat_facts
from dgxie.handoff.service import role_of
from dgxie.models import Node
from dgxie.nodes.lifecycle import transition
from dgxie.site import Site

WRAPPER = "bootstrap/_wrapper.sh.j2"
SERVABLE = (State.INSTALLED.value, State.BOOTSTRAPPING.value)


def bootstrap_url(public_url: str, boot_token: str) -> str:
    return f"{public_url}/boot/n/{boot_token}/bootstrap"


def fetch_command(public_url: str, boot_token: str) -> str:
    """The one line the install config runs at first boot (cloud-init `runcmd`, late-command, %post)."""
    url = bootstrap_url(public_url, boot_token)
    return (f"curl -fsS --retry 10 --retry-delay 5 -o /run/dgxie-bootstrap.sh {shlex.quote(url)} "
            "&& bash /run/dgxie-bootstrap.sh; rc=$?; rm -f /run/dgxie-bootstrap.sh; exit $rc")


def node_by_token(session: Session, token: str) -> Node:
    node = session.scalar(select(Node).where(Node.boot_token == token)) if token else None
    if node is None:
        raise NotFound("not found")
    return node


def redact(text: str, values: list[str]) -> str:
    """Replace every secret value that appears in `text` (never store a leaked secret)."""
    for v in sorted(values, key=len, reverse=True):
        if len(v) >= 4:
            text = text.replace(v, "[redacted]")
    return text


def summary(output: str) -> str:
    """The most telling line of a failed run: Ansible's last `fatal:`/`ERROR` line, else the last line."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith(("fatal:", "[ERROR]", "ERROR!", "dgxie:")):
            return ln[:200]
    return lines[-1][:200] if lines else "no output"


def bootstrap_script(session: Session, site: Site, node: Node) -> str:
    """The role's script rendered for `node` (contains its secrets: serve it only via the node's URL)."""
    role_name = role_of(site, node)
    role = site.roles[role_name]
    if role.bootstrap != "cloud-init" or not role.script:
        raise NotFound(f"{node.hostname}: role {role_name} does not bootstrap with a script")
    opened = secrets.open_for_role(session, site, role_name)
    merged: dict[str, Any] = dict(node.profile.vars) if node.profile is not None else {}
    merged.update(node.vars or {})

    def secret(name: str) -> str:
        if name not in opened:
            raise Unavailable(f"{node.hostname}: secret {name!r} is not set for role {role_name} "
                              f"(dgxie secret set {name})")
        return opened[name]

    def var(name: str, *default: Any) -> Any:
        if name in merged:
            return merged[name]
        if default:
            return default[0]
        raise Unavailable(f"{node.hostname}: variable {name!r} is not set (node or profile vars)")

    try:
        return templates.environment(site.handoff.templates_dir).get_template(WRAPPER).render(
            script=role.script, hostname=node.hostname, ip=node.ip, role=role_name, facts=flat_facts(node.facts),
            vars=merged, secret=secret, var=var, public_url=site.public_url,
            done_url=bootstrap_url(site.public_url, node.boot_token) + "/done",
            tail_bytes=site.handoff.output_tail_bytes)
    except jinja2.TemplateError as exc:
        raise Unavailable(f"{node.hostname}: bootstrap template {role.script}: {exc.message}") from None


def serve_script(session: Session, site: Site, token: str) -> str:
    """GET /boot/n/{token}/bootstrap: render, then installed -> bootstrapping (a retry re-serves)."""
    node = node_by_token(session, token)
    if node.state not in SERVABLE:
        raise Conflict(f"{node.hostname} is {node.state}, not waiting for its bootstrap")
    script = bootstrap_script(session, site, node)
    if node.state == State.INSTALLED.value:
        transition(session, node, State.BOOTSTRAPPING, actor=f"node:{node.hostname}",
                   reason=f"fetched the {node.role} bootstrap script", kind="bootstrap.start",
                   data={"method": "cloud-init"})
    return script


def finish(session: Session, site: Site, node: Node, *, ok: bool, output: str, actor: str,
           method: str, extra: dict[str, Any] | None = None) -> None:
    """bootstrapping -> ready | failed, with the (redacted, bounded) output tail in the event."""
    values = list(secrets.open_for_role(session, site, node.role).values()) if node.role else []
    tail = redact(output, values)[-site.handoff.output_tail_bytes:]
    data: dict[str, Any] = {"method": method, "output_tail": tail} | (extra or {})
    if ok:
        transition(session, node, State.READY, actor=actor, reason=f"{method} bootstrap succeeded",
                   kind="bootstrap.done", data=data)
        hooks.resume_if_drained(session, site, node, actor=actor)
    else:
        transition(session, node, State.FAILED, actor=actor, reason=f"{method} bootstrap failed: {summary(tail)}",
                   kind="bootstrap.done", data=data)


def report_done(session: Session, site: Site, token: str, *, ok: bool, output: str) -> Node:
    """POST /boot/n/{token}/bootstrap/done from the node's script."""
    node = node_by_token(session, token)
    if node.state != State.BOOTSTRAPPING.value:
        raise Conflict(f"{node.hostname} is {node.state}, not bootstrapping")
    finish(session, site, node, ok=ok, output=output, actor=f"node:{node.hostname}", method="cloud-init")
    return node


def on_installed(session: Session, site: Site, node: Node, *, actor: str) -> str:
    """What happens when `node` reaches installed; the installer-done callback calls this.

    Returns the method: `none` -> ready now; `ansible` -> the worker picks it up; `cloud-init` -> it
    waits for the node to fetch its script; `` (no role) -> stays installed.
    """
    if not node.role or node.role not in site.roles or node.state != State.INSTALLED.value:
        return ""
    method = site.roles[node.role].bootstrap
    if method == "none":
        transition(session, node, State.READY, actor=actor, reason=f"role {node.role} needs no bootstrap",
                   kind="bootstrap.done", data={"method": "none"})
        hooks.resume_if_drained(session, site, node, actor=actor)
    return method
