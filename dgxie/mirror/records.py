"""The database side of the mirrors, shared by sync jobs, rollback and import: which kind a
mirror is, its state row (what `mirror list` and the metrics show) and its snapshot rows.

The snapshots themselves live on disk, in each kind's format under `mirror_dir`; the rows follow
the disk: `record_current` after anything changed what a mirror serves, `drop_pruned` after its
kind pruned old snapshots. Everything is written in the caller's session, so it commits (or not)
with the operation's other rows (its job, its event).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from dgxie.errors import NotFound
from dgxie.mirror.kind import MirrorKind, mirror_dir
from dgxie.mirror.kinds import kind_for
from dgxie.mirror.schemas import JobOut
from dgxie.models import MirrorJob, MirrorSnapshot, MirrorState
from dgxie.sections import AnyMirrorConfig
from dgxie.site import Site


def spec(site: Site, name: str) -> AnyMirrorConfig:
    """The configured mirror `name` (NotFound if the configuration has none)."""
    for m in site.mirrors:
        if m.name == name:
            return m
    raise NotFound(f"no mirror named {name!r} in the configuration")


def kind_of(s: Session, site: Site, name: str) -> tuple[MirrorKind[Any], AnyMirrorConfig | None]:
    """A mirror's kind and config; a mirror known only from the database (imported, or dropped
    from the configuration) has no config."""
    for m in site.mirrors:
        if m.name == name:
            return kind_for(m.kind), m
    st = s.scalars(select(MirrorState).where(MirrorState.name == name)).one_or_none()
    if st is None:
        raise NotFound(f"no mirror named {name!r}")
    return kind_for(st.kind), None


def root_of(site: Site, kind: str, name: str) -> Path:
    return mirror_dir(site.data_dir, kind, name)


def state_row(s: Session, name: str, kind: str) -> MirrorState:
    st = s.scalars(select(MirrorState).where(MirrorState.name == name)).one_or_none()
    if st is None:
        st = MirrorState(name=name, kind=kind, files=0, bytes=0, failures=0, last_error="")
        s.add(st)
        s.flush()
    return st


def record_current(s: Session, site: Site, kind: str, name: str, source: str = "sync") -> MirrorState:
    """Bring the state row (and a snapshot row, `source` sync or import) in line with the
    snapshot the mirror serves now; returns the state row."""
    k = kind_for(kind)
    root = root_of(site, kind, name)
    st = state_row(s, name, kind)
    cur = k.current(root)
    if cur is None:
        return st
    info = k.info(root, cur)
    exists = s.scalars(select(MirrorSnapshot).where(MirrorSnapshot.mirror == name,
                                                    MirrorSnapshot.snapshot == cur)).first()
    if exists is None:
        s.add(MirrorSnapshot(mirror=name, kind=kind, snapshot=cur, files=info.files, bytes=info.bytes,
                             source=source, meta=info.meta))
    st.current_snapshot, st.files, st.bytes = cur, info.files, info.bytes
    return st


def drop_pruned(s: Session, site: Site, kind: str, name: str) -> None:
    """Delete the snapshot rows of snapshots the kind no longer keeps."""
    kept = set(kind_for(kind).history(root_of(site, kind, name)))
    s.execute(delete(MirrorSnapshot).where(MirrorSnapshot.mirror == name, MirrorSnapshot.snapshot.not_in(kept or {""})))


def job_out(j: MirrorJob) -> JobOut:
    return JobOut.model_validate(j, from_attributes=True)
