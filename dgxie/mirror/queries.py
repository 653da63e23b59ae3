"""Read side of the mirror service, plus rollback: list mirrors, jobs and snapshots."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from dgxie.errors import Invalid, NotFound
from dgxie.mirror import oci_kind, snapshots
from dgxie.mirror.schemas import JobOut, MirrorOut, SnapshotOut
from dgxie.mirror.service import job_out, record_current, root_of, state_row
from dgxie.models import MirrorJob, MirrorSnapshot, MirrorState
from dgxie.sections import MirrorConfig
from dgxie.site import Site


def _latest_job(s: Session, name: str) -> MirrorJob | None:
    return s.scalars(select(MirrorJob).where(MirrorJob.mirror == name).order_by(MirrorJob.id.desc()).limit(1)).first()


def _out(s: Session, site: Site, name: str, kind: str, m: MirrorConfig | None, st: MirrorState | None) -> MirrorOut:
    j = _latest_job(s, name)
    out = MirrorOut(name=name, kind=kind, configured=m is not None, job=job_out(j) if j else None,
                    url=f"{site.public_url}/mirror/{kind}/{name}" if kind == "apt" else f"{site.public_url}/v2/")
    if m is not None:
        out.upstream = str(m.options.get("url") or m.options.get("registry") or "") or None
        out.interval, out.keep_snapshots = m.interval, m.keep_snapshots
    if st is not None:
        for f in ("current_snapshot", "files", "bytes", "last_success_at", "last_failure_at", "failures",
                  "last_error"):
            setattr(out, f, getattr(st, f))
    return out


def list_mirrors(s: Session, site: Site) -> list[MirrorOut]:
    """Configured mirrors, then any known only from the database (e.g. imported)."""
    states = {st.name: st for st in s.scalars(select(MirrorState))}
    out = [_out(s, site, m.name, m.kind, m, states.pop(m.name, None)) for m in site.mirrors]
    out += [_out(s, site, st.name, st.kind, None, st) for st in sorted(states.values(), key=lambda x: x.name)]
    return out


def kind_of(s: Session, site: Site, name: str) -> tuple[str, MirrorConfig | None]:
    for m in site.mirrors:
        if m.name == name:
            return m.kind, m
    st = s.scalars(select(MirrorState).where(MirrorState.name == name)).one_or_none()
    if st is None:
        raise NotFound(f"no mirror named {name!r}")
    return st.kind, None


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


def _oci_time(sid: str) -> datetime:
    try:
        return datetime.strptime(sid[:15], "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except ValueError:
        return datetime.fromtimestamp(0, UTC)


def list_snapshots(s: Session, site: Site, name: str) -> list[SnapshotOut]:
    kind, _ = kind_of(s, site, name)
    root = root_of(site, kind, name)
    if kind == "oci":
        pub = oci_kind.current(root)
        return [SnapshotOut(snapshot=sid, created_at=_oci_time(sid),
                            files=pub.files if pub and pub.snapshot == sid else 0,
                            bytes=pub.bytes if pub and pub.snapshot == sid else 0, source="oci",
                            current=bool(pub and pub.snapshot == sid)) for sid in oci_kind.history(root)]
    cur = snapshots.current(root)
    rows = {r.snapshot: r for r in s.scalars(select(MirrorSnapshot).where(MirrorSnapshot.mirror == name))}
    out = []
    for sid in snapshots.list_snapshots(root):
        r = rows.get(sid)
        if r is None:
            man = snapshots.load_manifest(root, sid)
            out.append(SnapshotOut(snapshot=sid, created_at=man.created_at, files=len(man.files),
                                   bytes=man.total_bytes, source="disk", current=sid == cur, meta=man.meta))
        else:
            out.append(SnapshotOut(snapshot=sid, created_at=r.created_at, files=r.files, bytes=r.bytes,
                                   source=r.source, current=sid == cur, meta=r.meta))
    return out


def rollback(s: Session, site: Site, name: str, snapshot: str) -> MirrorOut:
    """Serve an older kept snapshot again (atomic switch of `current`)."""
    kind, _ = kind_of(s, site, name)
    root = root_of(site, kind, name)
    if kind == "oci":
        oci_kind.rollback(root, snapshot)
        record_current(s, site, kind, name, state_row(s, name, kind))
        return get_mirror(s, site, name)
    if snapshot not in snapshots.list_snapshots(root):
        raise Invalid(f"mirror {name} has no snapshot {snapshot!r} (see `dgxie mirror snapshots {name}`)")
    snapshots.publish(root, snapshot)
    record_current(s, site, kind, name, state_row(s, name, kind))
    return get_mirror(s, site, name)


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
