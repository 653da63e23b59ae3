"""FastAPI dependencies: one database session per request, the site, the context."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from dgxie.context import Context
from dgxie.db import session_scope
from dgxie.site import Site


def get_ctx(request: Request) -> Context:
    ctx = request.app.state.ctx
    assert isinstance(ctx, Context), "create_app() puts the Context on app.state"
    return ctx


def get_session(request: Request) -> Iterator[Session]:
    """A session committed when the handler returns normally, rolled back on any error."""
    with session_scope(get_ctx(request).sessions) as s:
        yield s


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
