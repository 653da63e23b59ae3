"""Named leader leases: at most one live holder per name across every instance on the database.

`acquire` takes or renews the lease for `holder` for `ttl` seconds. It is one conditional
UPDATE (mine already, or expired), else one INSERT for a name never held (the primary key
arbitrates a race). An instance that stops renewing loses the lease once `expires_at` passes and
another takes it over; a holder that cannot renew must stop the work the lease guards by then
(`worker.Leader` and `worker.Singleton` do).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from dgxie.db import session_scope
from dgxie.models import Lease
from dgxie.models.types import utcnow


def acquire(sessions: sessionmaker[Session], name: str, holder: str, ttl: float) -> bool:
    """Hold (or keep holding) lease `name` for `ttl` s; False while another live holder has it."""
    now = utcnow()
    until = now + timedelta(seconds=ttl)
    with session_scope(sessions) as s:
        res = s.execute(update(Lease).where(Lease.name == name, or_(Lease.holder == holder, Lease.expires_at < now))
                        .values(holder=holder, expires_at=until).execution_options(synchronize_session=False))
        if res.rowcount == 1:  # type: ignore[attr-defined]
            return True
        if s.scalars(select(Lease.name).where(Lease.name == name)).first() is not None:
            return False
    try:
        with session_scope(sessions) as s:
            s.add(Lease(name=name, holder=holder, expires_at=until, acquired_at=now, runs=0))
    except IntegrityError:
        return False  # another instance created it first
    return True


def release(sessions: sessionmaker[Session], name: str, holder: str) -> None:
    """Give the lease up now (a clean stop), so another instance need not wait for it to expire."""
    with session_scope(sessions) as s:
        s.execute(update(Lease).where(Lease.name == name, Lease.holder == holder)
                  .values(expires_at=utcnow() - timedelta(seconds=1)).execution_options(synchronize_session=False))


def due(sessions: sessionmaker[Session], name: str, holder: str, every: float) -> bool:
    """Whether `holder` (holding the lease) should run the periodic work now: never run, or the
    last run (by any holder) started `every` s ago or more. Marks the run started if so."""
    now = utcnow()
    with session_scope(sessions) as s:
        row = s.get(Lease, name)
        if row is None or row.holder != holder:
            return False
        last: datetime | None = row.last_run_at
        if last is not None and last + timedelta(seconds=every) > now:
            return False
        row.last_run_at, row.runs = now, row.runs + 1
        return True
