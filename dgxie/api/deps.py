"""FastAPI dependencies: one database session per request, the site, the context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from dgxie.context import Context
from dgxie.site import Site


def get_ctx(request: Request) -> Context:
    ctx = request.app.state.ctx
    assert isinstance(ctx, Context), "create_app() puts the Context on app.state"
    return ctx


def _finish(session: Session, ok: bool) -> None:
    """Commit (`ok`) or roll back, then close (the connection goes back to the pool)."""
    try:
        if ok:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session committed when the handler returns normally, rolled back on any error.

    Made on the event loop (no I/O: the handler's first query takes the connection, in its worker
    thread) and finished in one worker-thread hop, so a request costs one hop for its handler and
    one for the commit instead of one more to open the session (`db.session_scope`'s semantics)."""
    session = get_ctx(request).sessions()
    try:
        yield session
    except BaseException:
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(_finish, session, False)
        raise
    await run_in_threadpool(_finish, session, True)


def peer_address(request: Request) -> str:
    """The request's source address as the socket saw it (dgxie trusts no forwarding header: a node
    behind a proxy or NAT is vouched for by `boot.trusted_networks`, see nodes.origin)."""
    return request.client.host if request.client else ""


def get_site(request: Request) -> Site:
    return get_ctx(request).site


# scope="function": commit before the response is sent, so a client that acts on a 2xx sees the change
# (and a failed commit is an error response, not a 2xx for a change that did not land).
SessionDep = Annotated[Session, Depends(get_session, scope="function")]
SiteDep = Annotated[Site, Depends(get_site)]
