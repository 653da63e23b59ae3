"""Installer callbacks: what a node's installer reports to `POST /boot/n/{token}/events`.

Two shapes are accepted (both as the raw body, whatever the Content-Type says):

- dgxie's own, for preseed/kickstart/busybox: JSON `{"event": "started"|"progress"|"finished"|
  "failed", "message": "..."}` or the same form-encoded (`wget --post-data event=finished URL`).
- the cloud-init/curtin `webhook` reporter that subiquity's `reporting:` uses
  (cloudinit.reporting.events.ReportingEvent.as_dict): `{"name", "description", "event_type":
  "start"|"finish", "origin", "timestamp", "result": "SUCCESS"|"WARN"|"FAIL", "files": [...]}`.
  These are progress; curtin's top-level `cmd-install` finishing with FAIL is a failure.

Trust: a callback that would change the node's state needs the node's one-time `install`
credential (the path of `events_url` in the config the node fetched; `nodes.credentials`); without
it only progress and replays, which change nothing, are taken (else 401).

State effects (always through `lifecycle.transition`): the first callback (or a config fetch) moves
`enrolled -> installing`; `finished` -> `installed` (refused, out of order, for a node that never
started); `failed` -> `failed`; progress (also from an installed system's first boot, its
cloud-init webhook, until it ends) is logged at most once per interval per node (the rest are
counted into the next logged event). A repeated `finished` (or `failed`) changes nothing; any
other callback for a node that is not enrolled/installing (or, for progress, handed off) is a 409.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from dgxie.boot.state import State
from dgxie.errors import Conflict, Invalid, Unauthorized
from dgxie.events import record
from dgxie.models import Node
from dgxie.models.types import utcnow
from dgxie.nodes.lifecycle import transition
from dgxie.nodes.schemas import CallbackOut
from dgxie.validation import check_text, parse_json

KINDS = ("started", "progress", "finished", "failed")
MAX_TEXT = 500
INSTALLER = "installer"
SEEN_RESOLUTION = 10.0  # seconds: how fresh install_seen_at must be kept by config fetches
SEED_ARTIFACTS = frozenset({"user-data", "preseed", "kickstart"})  # fetching one means the install began


@dataclass(frozen=True)
class Callback:
    kind: str
    message: str
    data: dict[str, Any] = field(default_factory=dict)


def _text(v: Any, limit: int = MAX_TEXT) -> str:
    s = v if isinstance(v, str) else "" if v is None else str(v)
    return s[:limit]


def _webhook(obj: dict[str, Any]) -> Callback:
    etype, name = obj.get("event_type"), obj.get("name")
    if etype not in ("start", "finish") or not isinstance(name, str) or not name:
        raise Invalid("webhook event: needs event_type start|finish and a name")
    result = obj.get("result")
    if result is not None and result not in ("SUCCESS", "WARN", "FAIL"):
        raise Invalid("webhook event: result must be SUCCESS, WARN or FAIL")
    data: dict[str, Any] = {"source": "webhook", "name": _text(name, 200), "event_type": etype,
                            "origin": _text(obj.get("origin"), 64)}
    if result is not None:
        data["result"] = result
    files = obj.get("files")
    if isinstance(files, list):  # curtin posts whole logs (base64); keep only their names
        data["files"] = [_text(f.get("path"), 200) for f in files[:20] if isinstance(f, dict)]
    message = f"{etype} {name}" + (f": {result}" if result else "")
    desc = _text(obj.get("description"))
    if desc:
        message += f" ({desc})"
    kind = "failed" if etype == "finish" and result == "FAIL" and name == "cmd-install" else "progress"
    return Callback(kind=kind, message=_text(message), data=data)


def parse(body: bytes) -> Callback:
    """The callback in `body` (pure); Invalid for anything else."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise Invalid("callback body is not UTF-8") from None
    obj: Any
    if text.lstrip().startswith(("{", "[")):
        obj = parse_json(body, "callback body")  # bounded depth, finite numbers, no NUL (docs/api.md)
    else:
        try:
            pairs = urllib.parse.parse_qs(text.strip(), strict_parsing=True, max_num_fields=10)
        except ValueError:
            raise Invalid('callback body is neither JSON nor form data (send {"event": "finished"})') from None
        obj = {k: v[-1] for k, v in pairs.items()}
        for item in obj.items():
            for text in item:
                check_text(text, "callback body")
    if "event_type" in obj:
        return _webhook(obj)
    kind = obj.get("event")
    if kind not in KINDS:
        raise Invalid(f"event: must be one of {', '.join(KINDS)}")
    return Callback(kind=kind, message=_text(obj.get("message")), data={"source": "callback"})


def _progress(session: Session, node: Node, cb: Callback, now: datetime, interval: float) -> bool:
    last = node.progress_logged_at
    urgent = cb.data.get("result") == "FAIL"
    if last is not None and not urgent and (now - last).total_seconds() < interval:
        node.progress_suppressed = (node.progress_suppressed or 0) + 1
        return False
    data = dict(cb.data)
    if node.progress_suppressed:
        data["suppressed"] = node.progress_suppressed
    record(session, actor=INSTALLER, kind="install.progress", node=node, reason=cb.message or cb.kind, data=data)
    node.progress_logged_at, node.progress_suppressed = now, 0
    return True


def apply(session: Session, node: Node, cb: Callback, *, interval: float, authorized: bool = True,
          now: datetime | None = None) -> CallbackOut:
    """Apply one callback to `node`; returns the reply (state, changed, logged). Unauthorized when
    the callback would change the node's state and the caller is not `authorized`."""
    now = now or utcnow()
    state = node.state
    handed_off = (State.INSTALLED.value, State.BOOTSTRAPPING.value, State.READY.value)
    if (cb.kind == "finished" and state in handed_off) or (cb.kind, state) == ("failed", State.FAILED.value):
        return CallbackOut(state=state, changed=False, logged=False)  # a replay: the installer retried
    if cb.kind == "progress" and state in handed_off:
        # the installed system's first boot (cloud-init's webhook reporter): logged, no state change
        return CallbackOut(state=state, changed=False, logged=_progress(session, node, cb, now, interval))
    if state not in (State.ENROLLED.value, State.INSTALLING.value):
        raise Conflict(f"{node.hostname} is {state}: installer callbacks are taken only while enrolled or installing")
    if not authorized and (state == State.ENROLLED.value or cb.kind in ("finished", "failed")):
        raise Unauthorized("install credential not valid: a callback that changes the node's state needs "
                           "the callback URL of the config the node fetched")
    changed = logged = False
    if state == State.ENROLLED.value and cb.kind == "finished":
        raise Conflict(f"{node.hostname} has not started installing (no config fetch, no started callback): "
                       "a finished callback now is out of order")
    if state == State.ENROLLED.value and cb.kind == "failed":  # e.g. an initrd that could not fetch its config
        transition(session, node, State.FAILED, actor=INSTALLER, kind="install.failed",
                   reason=cb.message or "installer reported failure", data=cb.data)
        node.install_seen_at = now
        return CallbackOut(state=node.state, changed=True, logged=True)
    if state == State.ENROLLED.value:
        transition(session, node, State.INSTALLING, actor=INSTALLER, kind="install.start",
                   reason=f"installer reported {cb.kind}" + (f": {cb.message}" if cb.message else ""), data=cb.data)
        node.progress_logged_at, node.progress_suppressed = now, 0
        changed = logged = True
    node.install_seen_at = now
    if cb.kind in ("finished", "failed") and node.progress_suppressed:
        cb = Callback(cb.kind, cb.message, cb.data | {"suppressed": node.progress_suppressed})
        node.progress_suppressed = 0
    if cb.kind == "finished":
        transition(session, node, State.INSTALLED, actor=INSTALLER, kind="install.finished",
                   reason=cb.message or "installer finished", data=cb.data)
        changed = logged = True
    elif cb.kind == "failed":
        transition(session, node, State.FAILED, actor=INSTALLER, kind="install.failed",
                   reason=cb.message or "installer reported failure", data=cb.data)
        changed = logged = True
    elif not changed:  # started again (a restarted installer) or progress
        logged = _progress(session, node, cb, now, interval)
    return CallbackOut(state=node.state, changed=changed, logged=logged)


def writes_on_fetch(artifact: str, state: str, seen: datetime | None, now: datetime) -> bool:
    """Whether `note_fetch` changes anything for a fetch of `artifact` by a node in `state` whose
    last contact was `seen`: an enrolled node starting its install, or an installing one whose
    contact is older than SEEN_RESOLUTION."""
    if artifact in SEED_ARTIFACTS and state == State.ENROLLED.value:
        return True
    return state == State.INSTALLING.value and (seen is None or (now - seen).total_seconds() >= SEEN_RESOLUTION)


def note_fetch(session: Session, node: Node, artifact: str, *, now: datetime | None = None) -> None:
    """A node fetched its config: an enrolled node is now installing; an installing one is alive."""
    now = now or utcnow()
    if not writes_on_fetch(artifact, node.state, node.install_seen_at, now):
        return
    if artifact in SEED_ARTIFACTS and node.state == State.ENROLLED.value:
        transition(session, node, State.INSTALLING, actor=INSTALLER, kind="install.start",
                   reason=f"fetched {artifact}", data={"artifact": artifact})
    seen = node.install_seen_at
    if node.state == State.INSTALLING.value and (seen is None or (now - seen).total_seconds() >= SEEN_RESOLUTION):
        node.install_seen_at = now  # coarse, so a re-fetching installer does not write on every GET
