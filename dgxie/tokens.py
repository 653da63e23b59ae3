"""API tokens: create (shown once), authenticate (by SHA-256), list, revoke.

Roles are ordered: viewer reads; operator also changes nodes; admin also manages tokens,
profiles and images.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from dgxie.catalog.schemas import check_name
from dgxie.crypto import hash_token, new_token
from dgxie.errors import Conflict, Invalid, NotFound, Unauthorized
from dgxie.events import record
from dgxie.models import ApiToken
from dgxie.models.types import utcnow


class Role(StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"


RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


class TokenOut(BaseModel):
    id: int
    name: str
    role: str
    prefix: str
    revoked: bool
    created_at: datetime
    last_used_at: datetime | None


def to_out(t: ApiToken) -> TokenOut:
    return TokenOut(id=t.id, name=t.name, role=t.role, prefix=t.prefix, revoked=t.revoked,
                    created_at=t.created_at, last_used_at=t.last_used_at)


def create_token(session: Session, *, name: str, role: str, actor: str) -> tuple[ApiToken, str]:
    """A new token row and the plaintext token, which is never stored and never shown again."""
    try:
        check_name(name)
        r = Role(role)
    except ValueError as exc:
        raise Invalid(str(exc) if "name" in str(exc) else f"role: {role!r} is not admin, operator or viewer") from None
    if session.scalar(select(ApiToken).where(ApiToken.name == name)) is not None:
        raise Conflict(f"token {name} already exists")
    plain = new_token()
    tok = ApiToken(name=name, role=r.value, token_hash=hash_token(plain), prefix=plain[:12])
    session.add(tok)
    session.flush()
    record(session, actor=actor, kind="token.create", reason=f"token {name} ({r.value}) created",
           data={"token": name, "role": r.value})
    return tok, plain


def authenticate(session: Session, plain: str) -> ApiToken:
    """The live token for a bearer string, or Unauthorized."""
    tok = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(plain)))
    if tok is None or tok.revoked:
        raise Unauthorized("invalid or revoked token")
    now = utcnow()
    if tok.last_used_at is None or (now - tok.last_used_at).total_seconds() > 60:
        tok.last_used_at = now  # coarse, so reads do not write on every request
    return tok


def list_tokens(session: Session) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).order_by(ApiToken.name)))


def revoke_token(session: Session, name: str, *, actor: str) -> ApiToken:
    tok = session.scalar(select(ApiToken).where(ApiToken.name == name))
    if tok is None:
        raise NotFound(f"no token {name!r}")
    if not tok.revoked:
        tok.revoked = True
        record(session, actor=actor, kind="token.revoke", reason=f"token {name} revoked", data={"token": name})
    return tok
