"""/api/v1/nodes/{ref}/drain and /resume: run the node's role hooks by hand (docs/handoff.md).

The hooks are the role's `drain` / `resume` commands from the config (e.g. `scontrol update
nodename={hostname} state=drain reason=dgxie`); each run is a `hook.drain` / `hook.resume` event.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from dgxie.api.auth import Operator
from dgxie.api.deps import SessionDep, SiteDep
from dgxie.api.limits import JsonRoute
from dgxie.api.openapi import conflict
from dgxie.handoff import hooks
from dgxie.handoff.hooks import HookResult
from dgxie.nodes import service
from dgxie.tokens import Principal

router = APIRouter(prefix="/nodes", tags=["nodes"], route_class=JsonRoute)


class HookOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"node": "gpu01", "hook": "drain", "ok": True, "rc": 0, "output_tail": "", "drained": True}]})
    node: str
    hook: str
    ok: bool
    rc: int | None
    output_tail: str
    drained: bool


def _out(node: str, hook: str, res: HookResult, drained: bool) -> HookOut:
    return HookOut(node=node, hook=hook, ok=res.ok, rc=res.rc, output_tail=res.output, drained=drained)


@router.post("/{ref}/drain", response_model=HookOut,
             responses=conflict("the node's role has no drain hook, or the hook failed (recorded as an event)"))
def drain(ref: str, s: SessionDep, site: SiteDep, who: Principal = Operator) -> HookOut:
    """Take the node out of its scheduler now: run its role's drain hook (any state)."""
    node = service.get_node(s, ref)
    res = hooks.drain_now(s, site, node, actor=who.actor)
    return _out(node.hostname, "drain", res, drained=True)


@router.post("/{ref}/resume", response_model=HookOut,
             responses=conflict("the node's role has no resume hook"))
def resume(ref: str, s: SessionDep, site: SiteDep, who: Principal = Operator) -> HookOut:
    """Give the node back to its scheduler: run its role's resume hook. A failing hook is a 200
    with `ok` false (recorded as an event; the node stays drained)."""
    node = service.get_node(s, ref)
    res = hooks.resume_now(s, site, node, actor=who.actor)
    return _out(node.hostname, "resume", res, drained=not res.ok)
