"""Brokered secrets: set, list (names only), delete, and open for one node's bootstrap.

Values are sealed with `site.box` before they touch the database, are never put in an event, a
log line or an API answer, and are opened only while rendering the bootstrap script of a node in
`bootstrapping` whose role the secret allows.
"""

from __future__ import annotations

import re
from datetime import datetime

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from dgxie.errors import Invalid, NotFound
from dgxie.events import record
from dgxie.models import Secret
from dgxie.site import Site

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,127}$")
MAX_VALUE_BYTES = 64 * 1024


class SecretOut(BaseModel):
    name: str
    roles: list[str]
    created_at: datetime
    updated_at: datetime


def to_out(s: Secret) -> SecretOut:
    return SecretOut(name=s.name, roles=list(s.roles), created_at=s.created_at, updated_at=s.updated_at)


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise Invalid(f"secret name {name!r}: use a-z, 0-9, '.', '_', '-' (at most 128, starting alnum)")
    return name


def set_secret(session: Session, site: Site, name: str, value: str, *, roles: list[str] | None = None,
               actor: str) -> Secret:
    """Create or replace a secret. `roles` limits which roles may receive it (None/[]: any)."""
    check_name(name)
    if not value:
        raise Invalid(f"secret {name}: the value is empty")
    if len(value.encode()) > MAX_VALUE_BYTES:
        raise Invalid(f"secret {name}: larger than {MAX_VALUE_BYTES} bytes")
    for r in roles or []:
        site.check_role(r, where=f"secret {name}: ")
    sealed = site.box.seal(value)
    row = session.scalar(select(Secret).where(Secret.name == name))
    verb = "replaced" if row is not None else "created"
    if row is None:
        row = Secret(name=name, value_enc=sealed, roles=sorted(set(roles or [])))
        session.add(row)
    else:
        row.value_enc = sealed
        row.roles = sorted(set(roles or []))
    session.flush()
    record(session, actor=actor, kind="secret.set", reason=f"secret {name} {verb}",
           data={"name": name, "roles": row.roles})
    return row


def list_secrets(session: Session) -> list[Secret]:
    return list(session.scalars(select(Secret).order_by(Secret.name)))


def delete_secret(session: Session, name: str, *, actor: str) -> None:
    row = session.scalar(select(Secret).where(Secret.name == name))
    if row is None:
        raise NotFound(f"no secret {name!r}")
    session.delete(row)
    session.flush()
    record(session, actor=actor, kind="secret.delete", reason=f"secret {name} deleted", data={"name": name})


def open_for_role(session: Session, site: Site, role: str) -> dict[str, str]:
    """Every secret `role` may receive, opened. Only the bootstrap renderer calls this."""
    out: dict[str, str] = {}
    for row in list_secrets(session):
        if not row.roles or role in row.roles:
            out[row.name] = site.box.open(row.value_enc)
    return out
