"""`dgxie mirror-oci sync|snapshots|switch NAME`: the OCI mirrors' own commands, kept for their users.

Each checks that NAME is a configured `kind: oci` mirror, then goes through the common mirror
service exactly as `dgxie mirror sync|snapshots|rollback` do (a sync is a job, a switch is a
recorded rollback); only the output is OCI-shaped (tags per repository, blobs downloaded/held).
"""

from __future__ import annotations

import json
import time

import typer

from dgxie.cli.common import actor, console, context, err_console, session
from dgxie.cli.mirror_cmd import check_sync, run_sync
from dgxie.errors import Invalid, NotFound
from dgxie.mirror import queries, records, service
from dgxie.sections import OciMirrorConfig
from dgxie.site import Site

app = typer.Typer(help="OCI/NGC registry mirrors.", no_args_is_help=True, rich_markup_mode=None)


def oci_config(site: Site, name: str) -> OciMirrorConfig:
    try:
        m = records.spec(site, name)
    except NotFound:
        have = ", ".join(m.name for m in site.mirrors) or "none"
        raise NotFound(f"no mirror {name!r} in the config (have: {have})") from None
    if not isinstance(m, OciMirrorConfig):
        raise Invalid(f"mirror {name} is of kind {m.kind}, not oci")
    return m


@app.command("sync")
def sync(name: str = typer.Argument(..., help="OCI mirror name"),
         as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
         quiet: bool = typer.Option(False, "--quiet", help="no progress bar")) -> None:
    """Copy the configured repositories/tags into the store and publish a new snapshot."""
    ctx = context()
    oci_config(ctx.site, name)
    started = time.monotonic()
    job = run_sync(name, bar=not (quiet or as_json) and err_console.is_terminal)
    check_sync(name, job)
    with session() as s:
        snap = next(r for r in queries.list_snapshots(s, ctx.site, name) if r.snapshot == job.snapshot)
    tags: dict[str, list[str]] = snap.meta.get("tags", {})
    skipped = job.files_done - job.files_fetched
    summary = {"mirror": name, "snapshot": snap.snapshot, "downloaded_blobs": job.files_fetched,
               "downloaded_bytes": job.bytes_fetched, "skipped_blobs": skipped, "files": snap.files,
               "bytes": snap.bytes, "seconds": round(time.monotonic() - started, 3), "tags": tags}
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    for repo, names in tags.items():
        console.print(f"{repo}: {', '.join(names)}")
    console.print(f"mirror {name}: snapshot {snap.snapshot}, {snap.files} files, {snap.bytes} bytes "
                  f"({job.files_fetched} blobs / {job.bytes_fetched} bytes downloaded, {skipped} already held)")


@app.command("snapshots")
def snapshots(name: str = typer.Argument(..., help="OCI mirror name")) -> None:
    """List the kept snapshots of a mirror (oldest first; * = current)."""
    ctx = context()
    oci_config(ctx.site, name)
    with session() as s:
        rows = queries.list_snapshots(s, ctx.site, name)
    for r in rows:
        console.print(f"{'*' if r.current else ' '} {r.snapshot}")


@app.command("switch")
def switch(name: str = typer.Argument(..., help="OCI mirror name"),
           snapshot_id: str = typer.Argument(..., help="a kept snapshot (see dgxie mirror-oci snapshots)")) -> None:
    """Serve an older snapshot again (the same recorded rollback as `dgxie mirror rollback`)."""
    ctx = context()
    oci_config(ctx.site, name)
    with session() as s:
        service.rollback(s, ctx.site, name, snapshot_id, actor=actor())
    console.print(f"mirror {name}: now serving snapshot {snapshot_id}")
