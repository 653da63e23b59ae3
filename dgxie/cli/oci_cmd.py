"""`dgxie mirror-oci sync NAME`: sync one OCI mirror from the config (standalone entry; the
merged `dgxie mirror sync NAME` routes kind `oci` to the same `sync_oci`)."""

from __future__ import annotations

import json
import time

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn, TransferSpeedColumn

from dgxie.blobstore import BlobStore
from dgxie.cli.common import console, err_console, settings
from dgxie.config import Settings
from dgxie.errors import Invalid, NotFound
from dgxie.mirror.oci_snapshot import current_snapshot, list_history, switch_snapshot
from dgxie.mirror.oci_spec import OciMirrorSpec
from dgxie.mirror.oci_store import oci_state_dir, store_root
from dgxie.mirror.oci_sync import SyncEvent, sync_oci

app = typer.Typer(help="OCI/NGC registry mirrors.", no_args_is_help=True)


def oci_spec(cfg: Settings, name: str) -> OciMirrorSpec:
    for m in cfg.mirrors:
        if m.name == name:
            if m.kind != "oci":
                raise Invalid(f"mirror {name} is of kind {m.kind}, not oci")
            return OciMirrorSpec.from_entry(m.model_dump(exclude={"keep_snapshots", "interval"}))
    raise NotFound(f"no mirror {name!r} in the config (have: {', '.join(m.name for m in cfg.mirrors) or 'none'})")


@app.command("sync")
def sync(name: str, as_json: bool = typer.Option(False, "--json", help="print the summary as JSON"),
         quiet: bool = typer.Option(False, "--quiet", help="no progress bar")) -> None:
    """Copy the configured repositories/tags into the store and publish a new snapshot."""
    cfg = settings()
    spec = oci_spec(cfg, name)
    store = BlobStore(store_root(cfg.data_dir))
    counts = {"blobs": 0, "skipped": 0, "bytes": 0}
    started = time.monotonic()
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TextColumn("{task.fields[files]} files"), TimeElapsedColumn(),
                  console=err_console, transient=True,
                  disable=quiet or as_json or not err_console.is_terminal) as bar:
        task = bar.add_task(f"{name}", total=None, files=0)

        def on(ev: SyncEvent) -> None:
            if ev.kind == "repo":
                bar.update(task, description=f"{name}: {ev.repo} ({ev.count} tags)")
            elif ev.kind == "plan":
                bar.update(task, total=(bar.tasks[0].total or 0) + ev.nbytes)
            elif ev.kind == "bytes":
                counts["bytes"] += ev.nbytes
                bar.advance(task, ev.nbytes)
            elif ev.kind == "blob":
                counts["blobs"] += 1
                bar.update(task, files=counts["blobs"])
            elif ev.kind == "skip":
                counts["skipped"] += 1

        snap = sync_oci(spec, store, oci_state_dir(cfg.data_dir, name), on)
    files, total = snap.stats()
    tags = {r: sorted(rs.tags) for r, rs in snap.repositories.items()}
    summary = {"mirror": name, "snapshot": snap.id, "downloaded_blobs": counts["blobs"],
               "downloaded_bytes": counts["bytes"], "skipped_blobs": counts["skipped"], "files": files,
               "bytes": total, "seconds": round(time.monotonic() - started, 3),
               "tags": tags}
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    for repo, names in tags.items():
        console.print(f"{repo}: {', '.join(names)}")
    console.print(f"mirror {name}: snapshot {snap.id}, {files} files, {total} bytes "
                  f"({counts['blobs']} blobs / {counts['bytes']} bytes downloaded, {counts['skipped']} already held)")


@app.command("snapshots")
def snapshots(name: str) -> None:
    """List the kept snapshots of a mirror (oldest first; * = current)."""
    cfg = settings()
    oci_spec(cfg, name)
    state = oci_state_dir(cfg.data_dir, name)
    cur = current_snapshot(state)
    for sid in list_history(state):
        console.print(f"{'*' if cur is not None and cur.id == sid else ' '} {sid}")


@app.command("switch")
def switch(name: str, snapshot_id: str) -> None:
    """Serve an older snapshot again."""
    cfg = settings()
    oci_spec(cfg, name)
    snap = switch_snapshot(oci_state_dir(cfg.data_dir, name), snapshot_id)
    console.print(f"mirror {name}: now serving snapshot {snap.id}")
