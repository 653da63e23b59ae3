"""A node's two kinds of credential (docs/security.md).

**The boot token** locates a node's install config: `/boot/n/{boot token}/...` is on the kernel
command line that the unauthenticated iPXE script carries, so anyone who knows a MAC can learn it.
It is therefore worth little on its own: every `/boot/n/` request must also come from the node's
own address (`nodes.origin`), and nothing there moves a node's state without the credential below.
The token is HMAC(site key, `boot_nonce`): the database keeps the public nonce and the token's
sha256 (for lookup), never the token. A new nonce (a new token) at enroll and reprovision.

**The node credential** is one-time, scoped to one node and one purpose, stored as its sha256:

- `agent`: minted at every hello of the deploy agent (docs/deploy.md);
- `install`: minted when the node's own address fetches its install config (user-data, preseed,
  kickstart), embedded in that config's callback URL; an installer's `finished`/`failed` needs it;
- `bootstrap`: minted when the node fetches its role's bootstrap script (once per install), in the
  script's report URL; `bootstrap/done` needs it.

A node holds at most one (a new one replaces the old), it expires after `TTL`, and every state
change drops it (`lifecycle.transition`), so a credential never outlives the step it was made for.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import timedelta
from typing import Literal

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session, joinedload

from dgxie.crypto import SecretBox, hash_token, new_nonce
from dgxie.errors import NotFound, Unauthorized
from dgxie.models import Node
from dgxie.models.types import utcnow

Purpose = Literal["agent", "install", "bootstrap"]
TTL = timedelta(hours=12)  # a deploy of a large image, or a long install, over a slow link still fits
BOOT_TOKEN_LABEL = "boot-token"


def boot_token(box: SecretBox, node: Node) -> str:
    """The node's current boot token (computed, never stored)."""
    return box.derive(BOOT_TOKEN_LABEL, node.boot_nonce)


def new_boot_nonce(box: SecretBox) -> tuple[str, str]:
    """(nonce, sha256 of the boot token derived from it): what a node row stores."""
    nonce = new_nonce()
    return nonce, hash_token(box.derive(BOOT_TOKEN_LABEL, nonce))


def rotate_boot_token(box: SecretBox, node: Node) -> str:
    """A new boot token for `node` (new nonce); every URL with the previous one stops working."""
    node.boot_nonce, node.boot_token_hash = new_boot_nonce(box)
    return boot_token(box, node)


def backfill(session: Session, box: SecretBox) -> int:
    """Fill `boot_token_hash` where migration 0011 could not (it has no key); the number filled."""
    rows = list(session.scalars(select(Node).where(Node.boot_token_hash.is_(None))))
    for node in rows:
        node.boot_token_hash = hash_token(boot_token(box, node))
    if rows:
        session.flush()
    return len(rows)


# interfaces in the same query (a selectin load was a second query and half the cost of a config
# fetch); built once (building the statement and its loader option was a tenth of a config fetch)
_BY_TOKEN = select(Node).options(joinedload(Node.interfaces)).where(Node.boot_token_hash == bindparam("hash"))
_BY_TOKEN_LOCKED = _BY_TOKEN.with_for_update(of=Node)


def node_by_boot_token(session: Session, box: SecretBox, token: str, *, lock: bool = False) -> Node:
    """The node whose boot token this is: one 404 for a wrong token and an unknown node (no oracle)."""
    if not token or len(token) > 128:
        raise NotFound("not found")
    q = _BY_TOKEN_LOCKED if lock and session.get_bind().dialect.name == "postgresql" else _BY_TOKEN
    found = {"hash": hash_token(token)}
    node = session.scalars(q, found).unique().one_or_none()
    if node is None and backfill(session, box):
        node = session.scalars(q, found).unique().one_or_none()
    if node is None:
        raise NotFound("not found")
    return node


def mint(node: Node, purpose: Purpose, token: str | None = None) -> str:
    """A new one-time credential of `purpose` for `node` (`token`, already handed out in a response
    being built, or a new one); the one it held before stops working."""
    token = token or secrets.token_urlsafe(32)
    node.credential_hash = hash_token(token)
    node.credential_purpose = purpose
    node.credential_at = utcnow()
    return token


def drop(node: Node) -> None:
    """Forget the node's credential (every state change does)."""
    node.credential_hash = node.credential_purpose = node.credential_at = None


def valid(node: Node, purpose: Purpose, token: str | None) -> bool:
    """True when `token` is the node's live credential for `purpose` (constant-time compare)."""
    if not token or node.credential_hash is None or node.credential_purpose != purpose:
        return False
    if node.credential_at is None or utcnow() - node.credential_at > TTL:
        return False
    return hmac.compare_digest(node.credential_hash, hash_token(token))


def check(node: Node, purpose: Purpose, token: str | None) -> None:
    """Unauthorized (one message, no detail on why) unless `valid()`."""
    if not valid(node, purpose, token):
        raise Unauthorized(f"{purpose} credential not valid")


def node_by_credential(session: Session, purpose: Purpose, token: str) -> Node:
    """The node holding this credential (locked on PostgreSQL); Unauthorized otherwise."""
    node = session.scalar(select(Node).where(Node.credential_hash == hash_token(token)).with_for_update(of=Node)) \
        if token else None
    if node is None or not valid(node, purpose, token):
        raise Unauthorized(f"{purpose} credential not valid")
    return node
