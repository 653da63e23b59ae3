"""Read side of the mirror service: mirrors, jobs, snapshots and the Prometheus collector.

Kind-agnostic: where a mirror is reached and what snapshots it keeps come from its kind
(`MirrorKind.url`, `history`, `info`); how each came to be (sync, import) from the snapshot rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dgxie.errors import NotFound
from dgxie.mirror.kind import MirrorKind
from dgxie.mirror.kinds import kind_for
from dgxie.mirror.records import job_out, kind_of, root_of
from dgxie.mirror.schemas import JobOut, MirrorOut, SnapshotOut
from dgxie.models import MirrorJob, MirrorSnapshot, MirrorState
from dgxie.sections import AnyMirrorConfig
from dgxie.site import Site


def _latest_job(s: Session, name: str) -> MirrorJob | None:
    return s.scalars(select(MirrorJob).where(MirrorJob.mirror == name).order_by(MirrorJob.id.desc()).limit(1)).first()


def _out(s: Session, site: Site, name: str, kind: MirrorKind[Any], m: AnyMirrorConfig | None,
         st: MirrorState | None) -> MirrorOut:
    j = _latest_job(s, name)
    out = MirrorOut(name=name, kind=kind.name, configured=m is not None, job=job_out(j) if j else None,
                    url=kind.url(site.public_url, name))
    if m is not None:
        out.upstream = m.upstream or None
        out.interval, out.keep_snapshots = m.interval, m.keep_snapshots
    if st is not None:
        for f in ("current_snapshot", "files", "bytes", "last_success_at", "last_failure_at", "failures",
                  "last_error"):
            setattr(out, f, getattr(st, f))
    return out


def list_mirrors(s: Session, site: Site) -> list[MirrorOut]:
    """Configured mirrors, then any known only from the database (e.g. imported)."""
    states = {st.name: st for st in s.scalars(select(MirrorState))}
    out = [_out(s, site, m.name, kind_for(m.kind), m, states.pop(m.name, None)) for m in site.mirrors]
    out += [_out(s, site, st.name, kind_for(st.kind), None, st) for st in sorted(states.values(), key=lambda x: x.name)]
    return out


def get_mirror(s: Session, site: Site, name: str) -> MirrorOut:
    kind, m = kind_of(s, site, name)
    st = s.scalars(select(MirrorState).where(MirrorState.name == name)).one_or_none()
    return _out(s, site, name, kind, m, st)


def get_job(s: Session, name: str, job_id: int) -> JobOut:
    j = s.get(MirrorJob, job_id)
    if j is None or j.mirror != name:
        raise NotFound(f"mirror {name} has no job {job_id}")
    return job_out(j)


def list_jobs(s: Session, name: str, limit: int = 20) -> list[JobOut]:
    q = select(MirrorJob).where(MirrorJob.mirror == name).order_by(MirrorJob.id.desc()).limit(limit)
    return [job_out(j) for j in s.scalars(q)]


def list_snapshots(s: Session, site: Site, name: str) -> list[SnapshotOut]:
    """The kept snapshots, oldest first; `source` is how each came (sync, import), or `disk` for
    one the database has no row of."""
    kind, _ = kind_of(s, site, name)
    root = root_of(site, kind.name, name)
    cur = kind.current(root)
    rows = {r.snapshot: r for r in s.scalars(select(MirrorSnapshot).where(MirrorSnapshot.mirror == name))}
    out = []
    for sid in kind.history(root):
        r = rows.get(sid)
        if r is None:
            info = kind.info(root, sid)
            out.append(SnapshotOut(snapshot=sid, created_at=info.created_at, files=info.files, bytes=info.bytes,
                                   source="disk", current=sid == cur, meta=info.meta))
        else:
            out.append(SnapshotOut(snapshot=sid, created_at=r.created_at, files=r.files, bytes=r.bytes,
                                   source=r.source, current=sid == cur, meta=r.meta))
    return out


class MirrorCollector(Collector):
    """Per-mirror files, bytes, last successful sync and failures, read at scrape time."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        files = GaugeMetricFamily("dgxie_mirror_files", "Files in the published snapshot", labels=["mirror", "kind"])
        size = GaugeMetricFamily("dgxie_mirror_bytes", "Bytes in the published snapshot", labels=["mirror", "kind"])
        last = GaugeMetricFamily("dgxie_mirror_last_success_timestamp_seconds", "Last successful sync (Unix time)",
                                 labels=["mirror", "kind"])
        fails = CounterMetricFamily("dgxie_mirror_sync_failures", "Failed syncs", labels=["mirror", "kind"])
        with self.sessions() as s:
            for st in s.scalars(select(MirrorState)):
                labels = [st.name, st.kind]
                files.add_metric(labels, st.files)
                size.add_metric(labels, st.bytes)
                fails.add_metric(labels, st.failures)
                if st.last_success_at is not None:
                    last.add_metric(labels, st.last_success_at.timestamp())
        yield from (files, size, last, fails)
