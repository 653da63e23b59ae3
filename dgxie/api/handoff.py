"""Per-node bootstrap endpoints (unauthenticated; node-facing, so not in the OpenAPI document).

    GET  /boot/n/{token}/bootstrap                     the role's script for this node, once per
                                                       install (installed -> bootstrapping)
    POST /boot/n/{token}/bootstrap/done/{credential}   the script's result: ?status=ok|failed with
                                                       the output tail as the text body, or JSON
                                                       {"status": ..., "output": ...}

Both answer only the node's own address (403 otherwise); the result needs the one-time credential
the script carries (401 otherwise); a second fetch of the script is a 409 (docs/security.md). A
wrong token is a plain 404 that says nothing about which nodes exist.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from dgxie.api.deps import get_ctx, peer_address
from dgxie.api.limits import read_body
from dgxie.errors import Invalid
from dgxie.handoff import bootstrap
from dgxie.nodes.schemas import BootstrapDoneOut
from dgxie.validation import parse_json

router = APIRouter(prefix="/boot/n/{token}", tags=["boot"], include_in_schema=False)
MAX_OUTPUT = 256 * 1024


@router.get("/bootstrap", response_class=Response)
async def get_bootstrap(token: str, request: Request) -> Response:
    ctx = get_ctx(request)
    script = await run_in_threadpool(bootstrap.serve_script, ctx.sessions, ctx.site, token, peer_address(request))
    return Response(script, media_type="text/x-shellscript", headers={"Cache-Control": "no-store"})


def _result(body: bytes, content_type: str, status: str | None) -> tuple[str, str]:
    """(status, output) from the report's body and query (pure)."""
    output = body[-MAX_OUTPUT:].decode(errors="replace")
    if content_type.startswith("application/json"):
        doc = parse_json(body or b"{}", "body")  # an object, bounded depth, no NUL (422 otherwise)
        status = str(doc.get("status", status or ""))
        output = str(doc.get("output", ""))[-MAX_OUTPUT:]
    if status not in ("ok", "failed"):
        raise Invalid("status: must be ok or failed")
    return status, output.replace("\x00", "")  # NUL cannot be stored (PostgreSQL text)


@router.post("/bootstrap/done/{credential}")
async def bootstrap_done(token: str, credential: str, request: Request, status: str | None = None) -> BootstrapDoneOut:
    ctx = get_ctx(request)
    body = await read_body(request, 4 * MAX_OUTPUT, "bootstrap result")
    status, output = _result(body, request.headers.get("content-type", ""), status)
    hostname, state = await run_in_threadpool(
        lambda: bootstrap.report_done(ctx.sessions, ctx.site, token, peer=peer_address(request),
                                      credential=credential, ok=status == "ok", output=output))
    return BootstrapDoneOut(node=hostname, state=state)
