"""Bootstrap of an installed node by its role's method: `cloud-init` scripts, `none`, and the outcome.

`cloud-init`: the install config (user-data) runs `fetch_command()` at first boot. That GETs
`/boot/n/{token}/bootstrap` (`serve_script`), which moves the node installed -> bootstrapping and
answers the role's script rendered for this node only, with the secrets its role may receive. It
is served once per install, only to the node's own address (`nodes.origin`), only while the node is
`installed`: a second fetch is refused (409) and recorded as an event. The script carries a new
one-time `bootstrap` credential in its report URL `/boot/n/{token}/bootstrap/done/{credential}`
(`report_done`): bootstrapping -> ready | failed, with the output redacted (`handoff.redact`).
`none`: `on_installed()` moves installed -> ready at once. `ansible`: see `runner.py`.
"""

from __future__ import annotations

import secrets
import shlex
from typing import Any

import jinja2
from sqlalchemy.orm import Session, sessionmaker

from dgxie.boot import templates
from dgxie.boot.state import State
from dgxie.db import session_scope
from dgxie.errors import Conflict, DgxieError, NotFound, Unavailable
from dgxie.handoff import hooks
from dgxie.handoff import secrets as role_secrets
from dgxie.handoff.records import flat_facts
from dgxie.handoff.redact import redact
from dgxie.handoff.service import role_of
from dgxie.models import Node
from dgxie.nodes import credentials, origin
from dgxie.nodes.credentials import boot_token, node_by_boot_token
from dgxie.nodes.lifecycle import transition
from dgxie.site import Site

WRAPPER = "bootstrap/_wrapper.sh.j2"


def bootstrap_url(public_url: str, boot_token: str) -> str:
    return f"{public_url}/boot/n/{boot_token}/bootstrap"


def fetch_command(public_url: str, boot_token: str) -> str:
    """The one line the install config runs at first boot (cloud-init `runcmd`, late-command, %post)."""
    url = bootstrap_url(public_url, boot_token)
    return (f"curl -fsS --retry 10 --retry-delay 5 -o /run/dgxie-bootstrap.sh {shlex.quote(url)} "
            "&& bash /run/dgxie-bootstrap.sh; rc=$?; rm -f /run/dgxie-bootstrap.sh; exit $rc")


def summary(output: str) -> str:
    """The most telling line of a failed run: Ansible's last `fatal:`/`ERROR` line, else the last line."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    for ln in reversed(lines):
        if ln.startswith(("fatal:", "[ERROR]", "ERROR!", "dgxie:")):
            return ln[:200]
    return lines[-1][:200] if lines else "no output"


def bootstrap_script(session: Session, site: Site, node: Node, *, credential: str) -> str:
    """The role's script rendered for `node` (contains its secrets: serve it only via the node's URL)."""
    role_name = role_of(site, node)
    role = site.roles[role_name]
    if role.bootstrap != "cloud-init" or not role.script:
        raise NotFound(f"{node.hostname}: role {role_name} does not bootstrap with a script")
    opened = role_secrets.open_for_role(session, site, role_name)
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
            done_url=f"{bootstrap_url(site.public_url, boot_token(site.box, node))}/done/{credential}",
            tail_bytes=site.handoff.output_tail_bytes)
    except jinja2.TemplateError as exc:
        raise Unavailable(f"{node.hostname}: bootstrap template {role.script}: {exc.message}") from None


def serve_script(sessions: sessionmaker[Session], site: Site, token: str, peer: str) -> str:
    """GET /boot/n/{token}/bootstrap from `peer`: render, then installed -> bootstrapping, once.

    Forbidden from another address and Conflict for a second fetch (both recorded as the node's
    events) or any other state; NotFound for a wrong token."""
    refused: DgxieError | None = None
    with session_scope(sessions) as s:
        node = node_by_boot_token(s, site.box, token, lock=True)
        refused = origin.guard(s, node, peer, site.boot.trusted_networks, "bootstrap script")
        if refused is None and node.state == State.BOOTSTRAPPING.value:
            origin.note_refusal(s, node, peer, "bootstrap script", "fetched a second time (served once per install)")
            refused = Conflict(f"{node.hostname}: its bootstrap script was already served for this install "
                               "(reprovision to run it again)")
        elif refused is None and node.state != State.INSTALLED.value:
            raise Conflict(f"{node.hostname} is {node.state}, not waiting for its bootstrap")
        if refused is None:
            credential = secrets.token_urlsafe(32)
            script = bootstrap_script(s, site, node, credential=credential)
            transition(s, node, State.BOOTSTRAPPING, actor=f"node:{node.hostname}",
                       reason=f"fetched the {node.role} bootstrap script", kind="bootstrap.start",
                       data={"method": "cloud-init", "peer": peer[:64]})
            credentials.mint(node, "bootstrap", credential)
            return script
    assert refused is not None
    raise refused


def finish(session: Session, site: Site, node: Node, *, ok: bool, output: str, actor: str,
           method: str, extra: dict[str, Any] | None = None) -> None:
    """bootstrapping -> ready | failed, with the (redacted, bounded) output tail in the event."""
    values = list(role_secrets.open_for_role(session, site, node.role).values()) if node.role else []
    tail = redact(output, values)[-site.handoff.output_tail_bytes:]
    data: dict[str, Any] = {"method": method, "output_tail": tail} | (extra or {})
    if ok:
        transition(session, node, State.READY, actor=actor, reason=f"{method} bootstrap succeeded",
                   kind="bootstrap.done", data=data)
        hooks.resume_if_drained(session, site, node, actor=actor)
    else:
        transition(session, node, State.FAILED, actor=actor, reason=f"{method} bootstrap failed: {summary(tail)}",
                   kind="bootstrap.done", data=data)


def report_done(sessions: sessionmaker[Session], site: Site, token: str, *, peer: str, credential: str,
                ok: bool, output: str) -> tuple[str, str]:
    """POST /boot/n/{token}/bootstrap/done/{credential} from the node's script: (hostname, state).
    Forbidden from another address, Unauthorized without the script's credential."""
    refused: DgxieError | None = None
    with session_scope(sessions) as s:
        node = node_by_boot_token(s, site.box, token, lock=True)
        refused = origin.guard(s, node, peer, site.boot.trusted_networks, "bootstrap result")
        if refused is None:
            if node.state != State.BOOTSTRAPPING.value:
                raise Conflict(f"{node.hostname} is {node.state}, not bootstrapping")
            credentials.check(node, "bootstrap", credential)
            finish(s, site, node, ok=ok, output=output, actor=f"node:{node.hostname}", method="cloud-init")
            return node.hostname, node.state
    assert refused is not None
    raise refused


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
