"""Per-node bootstrap endpoints (unauthenticated; the node's boot token in the URL is the secret).

    GET  /boot/n/{token}/bootstrap        the role's script for this node (installed -> bootstrapping)
    POST /boot/n/{token}/bootstrap/done   the script's result: ?status=ok|failed with the output tail
                                          as the text body, or JSON {"status": ..., "output": ...}

A wrong token is a plain 404 that says nothing about which nodes exist.
"""

from __future__ import annotations

import json

from fastapi import APIRouter, Request, Response

from dgxie.api.deps import SessionDep, SiteDep
from dgxie.errors import Invalid
from dgxie.handoff import bootstrap
from dgxie.nodes.schemas import BootstrapDoneOut

router = APIRouter(prefix="/boot/n/{token}", tags=["boot"])
MAX_OUTPUT = 256 * 1024


@router.get("/bootstrap", response_class=Response)
def get_bootstrap(token: str, s: SessionDep, site: SiteDep) -> Response:
    script = bootstrap.serve_script(s, site, token)
    s.commit()  # the script may report back before a yield-dependency would commit
    return Response(script, media_type="text/x-shellscript", headers={"Cache-Control": "no-store"})


@router.post("/bootstrap/done")
async def bootstrap_done(token: str, request: Request, s: SessionDep, site: SiteDep,
                         status: str | None = None) -> BootstrapDoneOut:
    body = (await request.body())[-MAX_OUTPUT:]
    output = body.decode(errors="replace")
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            raise Invalid("body: not JSON") from None
        if not isinstance(doc, dict):
            raise Invalid("body: expected a JSON object")
        status = str(doc.get("status", status or ""))
        output = str(doc.get("output", ""))
    if status not in ("ok", "failed"):
        raise Invalid("status: must be ok or failed")
    node = bootstrap.report_done(s, site, token, ok=status == "ok", output=output)
    s.commit()
    return BootstrapDoneOut(node=node.hostname, state=node.state)
