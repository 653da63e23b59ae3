"""A bare-metal node and its network interfaces."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dgxie.db import Base
from dgxie.models.profile import Profile
from dgxie.models.types import JSONType, UTCDateTime, utcnow


class Node(Base):
    __tablename__ = "nodes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    hostname: Mapped[str] = mapped_column(String(63), unique=True)
    ip: Mapped[str | None] = mapped_column(String(45), unique=True)
    profile_id: Mapped[int | None] = mapped_column(ForeignKey("profiles.id", ondelete="RESTRICT"))
    role: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(32), default="enrolled")
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    facts: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    vars: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    bmc_url: Mapped[str | None] = mapped_column(String(255))
    bmc_username: Mapped[str | None] = mapped_column(String(128))
    bmc_password_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The boot token is HMAC(site key, boot_nonce) (dgxie.nodes.credentials): the nonce is public,
    # only the token's sha256 is kept, for lookup (migration 0011, docs/security.md).
    boot_nonce: Mapped[str] = mapped_column(String(64), unique=True)
    boot_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    state_changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # Install progress (migration 0004, lifecycle): the last installer contact, for the timeout sweep,
    # and the progress-event aggregation (one logged event per interval, the rest counted).
    install_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    progress_logged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    progress_suppressed: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The node's one credential (migrations 0010, 0011; dgxie.nodes.credentials): the sha256 of a
    # one-time token for one purpose (agent | install | bootstrap), dropped at every state change.
    credential_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    credential_purpose: Mapped[str | None] = mapped_column(String(16))
    credential_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    profile: Mapped[Profile | None] = relationship(lazy="joined")
    interfaces: Mapped[list[Interface]] = relationship(
        back_populates="node", cascade="all, delete-orphan", lazy="selectin", order_by="Interface.id"
    )

    __table_args__ = (Index("ix_nodes_state", "state"), Index("ix_nodes_role", "role"),
                      Index("ix_nodes_updated_at", "updated_at"))

    @property
    def mac(self) -> str | None:
        """The primary (first) interface's MAC."""
        return self.interfaces[0].mac if self.interfaces else None


class Interface(Base):
    __tablename__ = "interfaces"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), index=True)
    mac: Mapped[str] = mapped_column(String(17), unique=True)
    name: Mapped[str | None] = mapped_column(String(32))

    node: Mapped[Node] = relationship(back_populates="interfaces")


class NodeTag(Base):
    """One of a node's tags, for indexed tag filters (issue 14): written only by the database's own
    triggers on `nodes` (migration 0018), so every writer keeps it in step; `nodes.tags` stays the
    record. A tag filter is an index lookup here instead of a scan of every node's JSON."""

    __tablename__ = "node_tags"

    node_id: Mapped[int] = mapped_column(ForeignKey("nodes.id", ondelete="CASCADE"), primary_key=True)
    tag: Mapped[str] = mapped_column(String(63), primary_key=True)

    __table_args__ = (Index("ix_node_tags_tag", "tag", "node_id"),)
