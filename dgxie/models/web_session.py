"""A dashboard session, shared by every dgxie instance on the database.

`id` is the SHA-256 of the random 256-bit cookie value (the value itself is never stored);
`token_id` names the API token that signed in (the token itself is never stored: each use
re-reads that token's row, so revoking it ends the session). The CSRF token is not stored
either: it is derived from the cookie value with the site key (dgxie/web/store.py).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from dgxie.db import Base
from dgxie.models.types import UTCDateTime, utcnow


class WebSessionRow(Base):
    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
