"""`dgxie mirror list|sync|jobs|snapshots|rollback|gc|export|import`: every kind, through the mirror service."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import (
    BarColumn,
    DownloadColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as Bar
from rich.table import Table

from dgxie.cli.common import actor, console, context, dump_json, err_console, session, site
from dgxie.cli.output import Format, json_option, output_option, wants_json
from dgxie.errors import Invalid, Unavailable
from dgxie.mirror import bundle, queries, records, service
from dgxie.mirror.kind import Progress
from dgxie.mirror.schemas import JobOut

app = typer.Typer(help="APT and OCI mirrors: sync, snapshots, air-gap export/import.", no_args_is_help=True,
                  rich_markup_mode=None)


def _size(n: int) -> str:
    f = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if f < 1024 or unit == "GiB":
            return f"{f:.0f} {unit}" if unit == "B" else f"{f:.1f} {unit}"
        f /= 1024
    return str(n)


@app.command("list")
def list_(output: Format = output_option(), as_json: bool = json_option()) -> None:
    """Configured mirrors (and imported ones) with their published snapshot."""
    with session() as s:
        rows = queries.list_mirrors(s, site())
    if wants_json(output, as_json):
        dump_json(rows)
        return
    t = Table("name", "kind", "snapshot", "files", "size", "last success", "failures", "last job")
    for r in rows:
        job = f"{r.job.status} #{r.job.id}" if r.job else ""
        t.add_row(r.name, r.kind, r.current_snapshot or "-", str(r.files), _size(r.bytes),
                  str(r.last_success_at or "-")[:19], str(r.failures), job)
    console.print(t)


def run_sync(name: str, *, bar: bool) -> JobOut:
    """Sync NAME in the foreground through the mirror service (a job like any other), with a
    progress bar on stderr when `bar`; returns the finished job. `mirror-oci sync` uses it too."""
    ctx = context()
    records.spec(ctx.site, name)
    cols = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TimeElapsedColumn())
    with Bar(*cols, console=err_console, disable=not bar, transient=False) as progress_bar:
        task = progress_bar.add_task(name, total=None)

        def show(p: Progress) -> None:
            files = f" {p.counters.files_done}/{p.files_total} files" if p.files_total else ""
            progress_bar.update(task, description=f"{name}: {p.phase}{files}", total=p.bytes_total or None,
                                completed=p.counters.bytes_done)

        return service.sync_now(ctx.sessions, ctx.site, name, trigger=actor(), on_progress=show)


def check_sync(name: str, job: JobOut) -> None:
    """A failed sync is one line and exit 1."""
    if job.status != "succeeded":
        raise Unavailable(f"mirror {name}: sync failed: {job.error}")


@app.command("sync")
def sync(name: str = typer.Argument(..., help="mirror name"), as_json: bool = json_option(),
         quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress bar")) -> None:
    """Sync NAME now, with progress (files, bytes, rate). Exit 1 if the sync fails."""
    job = run_sync(name, bar=not (quiet or as_json))
    if as_json:
        dump_json(job)
    check_sync(name, job)
    if not as_json:
        err_console.print(f"{name}: snapshot {job.snapshot}; fetched {job.files_fetched} files, "
                          f"{_size(job.bytes_fetched)}")


@app.command("jobs")
def jobs(name: str = typer.Argument(..., help="mirror name"), output: Format = output_option(),
         as_json: bool = json_option()) -> None:
    """List a mirror's sync jobs, newest first."""
    with session() as s:
        queries.get_mirror(s, site(), name)
        rows = queries.list_jobs(s, name)
    if wants_json(output, as_json):
        dump_json(rows)
        return
    t = Table("id", "status", "trigger", "snapshot", "fetched", "started", "error")
    for j in rows:
        t.add_row(str(j.id), j.status, j.trigger, j.snapshot or "", f"{j.files_fetched} / {_size(j.bytes_fetched)}",
                  str(j.started_at or "")[:19], j.error)
    console.print(t)


@app.command("snapshots")
def snapshots_(name: str = typer.Argument(..., help="mirror name"), output: Format = output_option(),
               as_json: bool = json_option()) -> None:
    """List a mirror's kept snapshots (* = the one served)."""
    with session() as s:
        rows = queries.list_snapshots(s, site(), name)
    if wants_json(output, as_json):
        dump_json(rows)
        return
    t = Table("snapshot", "current", "files", "size", "source")
    for r in rows:
        t.add_row(r.snapshot, "*" if r.current else "", str(r.files), _size(r.bytes), r.source)
    console.print(t)


@app.command("rollback")
def rollback(name: str = typer.Argument(..., help="mirror name"),
             snapshot: str = typer.Argument(..., help="a kept snapshot (see dgxie mirror snapshots)")) -> None:
    """Serve SNAPSHOT (a kept older snapshot) again."""
    with session() as s:
        service.rollback(s, site(), name, snapshot, actor=actor())
    err_console.print(f"{name}: now serving {snapshot}")


@app.command("gc")
def gc(dry_run: bool = typer.Option(False, "--dry-run", help="only count what would go")) -> None:
    """Delete stored blobs that no kept snapshot (of any mirror) references, and partial files
    (mirror or image store) untouched for an hour."""
    ctx = context()
    n, size = service.collect_garbage(ctx.sessions, ctx.site, dry_run=dry_run)
    err_console.print(f"{'would remove' if dry_run else 'removed'} {n} blobs, {_size(size)}")


@app.command("export")
def export(args: list[str] = typer.Argument(..., metavar="NAME... DIR", help="mirror names, then the bundle directory"),
           since: str | None = typer.Option(None, help="carry only what is new since this snapshot"),
           incremental: bool = typer.Option(False, help="carry only what is new since the last export")) -> None:
    """Write the published snapshots of NAME... to DIR (a checksummed, self-describing bundle)."""
    if len(args) < 2:
        raise Invalid("usage: dgxie mirror export NAME... DIR")
    *names, dest = args
    with session() as s:
        res = bundle.export(s, site(), names, Path(dest), since=since, incremental=incremental)
    err_console.print(f"exported {', '.join(f'{m}@{sn}' for m, sn in zip(res.mirrors, res.snapshots, strict=True))}"
                      f": {res.blobs} blobs, {_size(res.bytes)} -> {dest}")


@app.command("import")
def import_(src: Path = typer.Argument(..., help="bundle directory written by dgxie mirror export")) -> None:
    """Verify a bundle made by `dgxie mirror export` and publish its snapshots."""
    with session() as s:
        res = bundle.import_(s, site(), src)
    err_console.print(f"imported {', '.join(f'{m}@{sn}' for m, sn in zip(res.mirrors, res.snapshots, strict=True))}"
                      f": {res.blobs} blobs verified")
