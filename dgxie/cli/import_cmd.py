"""`dgxie node import FILE...`: nodes from CSV, YAML, dnsmasq; boot entries from DGXIE's machines.json.

Idempotent (the same files twice: everything `unchanged`, nothing written), all-or-nothing
(every bad row is listed, then nothing is imported, exit 1), and `--dry-run` shows what would
change by running the whole import and rolling it back.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from dgxie.cli.common import actor, session, sessions, site
from dgxie.cli.gcpause import gc_paused
from dgxie.errors import Invalid
from dgxie.handoff.checks import check_roles
from dgxie.nodes import importer, importing
from dgxie.nodes.dgxie_machines import DEFAULT_HTTP_PORT, parse_env


class _RollBack(Exception):
    """Raised inside the session to undo a dry run (or a run with errors)."""


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError as exc:
        raise Invalid(f"{path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise Invalid(f"{path}: not a text file") from None


def import_(
    files: list[Path] = typer.Argument(..., help="CSV, YAML or JSON node lists, DGXIE machines.json, dnsmasq "
                                                 "dhcp-host= files"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what would change, change nothing."),
    files_dir: Path | None = typer.Option(None, "--files", help="DGXIE's HTTP root as a directory (its /www: the DGX "
                                          "ISO's tree under iso/, dgx.seed): localhost files are copied into "
                                          "dgxie's image store."),
    proxy: str | None = typer.Option(None, "--proxy", help="DGXIE's HTTP server, still running (e.g. "
                                     "http://192.168.1.1:13370): localhost files are fetched from it on first "
                                     "use, then kept."),
    env: Path | None = typer.Option(None, "--env", help="DGXIE's env file (config/pxe/env): its HTTP_PORT is what "
                                    "machines.json's $HTTP_PORT stands for (default 13370)."),
) -> None:
    """Import nodes, and DGXIE's boot entries as images and profiles: all or nothing, idempotent."""
    if files_dir is not None and not files_dir.is_dir():
        raise Invalid(f"--files {files_dir}: not a directory")
    if proxy is not None and not proxy.startswith(("http://", "https://")):
        raise Invalid(f"--proxy {proxy!r}: not an http(s) URL")
    http_port = parse_env(_read(env)).get("HTTP_PORT", DEFAULT_HTTP_PORT) if env is not None else DEFAULT_HTTP_PORT
    with gc_paused():  # nearly all it allocates lives to the end, without cycles (cli/gcpause.py)
        _import(files, dry_run=dry_run, sources=importing.Sources(files_dir=files_dir, proxy=proxy),
                http_port=http_port)


def _import(files: list[Path], *, dry_run: bool, sources: importing.Sources, http_port: str) -> None:
    """The import itself (see the module's docstring): parse every file, apply, print what changed."""
    plan = importer.ImportPlan()
    for f in files:
        plan.extend(importer.parse_file(f.name, _read(f), http_port=http_port))
    sessions()  # first, as context() did: the data directory's modes, then the schema
    the_site = site()  # not context(): an import needs none of the server's wiring (0.25 s of imports)
    check_roles(the_site)  # as context() did: a role's missing template or playbook is a config error
    outcome = importing.Outcome()
    try:
        with session() as s:
            outcome = importing.apply(s, the_site, plan, data_dir=the_site.data_dir, sources=sources,
                                      store=not dry_run, actor=actor())
            if dry_run or outcome.errors:
                raise _RollBack
    except _RollBack:
        pass
    except BaseException:
        _drop_blobs(outcome)
        raise
    for w in outcome.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if outcome.errors:
        _drop_blobs(outcome)
        raise Invalid("\n".join([*outcome.errors, f"nothing imported: {len(outcome.errors)} error(s)"]))
    verb = {"create": "would create" if dry_run else "created", "update": "would update" if dry_run else "updated"}
    for c in outcome.changes:
        if c.action != "unchanged":
            print(f"{verb[c.action]} {c.kind} {c.name}" + (f" ({c.detail})" if c.detail else ""))
    summary = f"{outcome.count('create')} to create, {outcome.count('update')} to update, " \
              f"{outcome.count('unchanged')} unchanged (dry run: nothing changed)" if dry_run else \
              f"{outcome.count('create')} created, {outcome.count('update')} updated, " \
              f"{outcome.count('unchanged')} unchanged"
    print(summary, file=sys.stderr)


def _drop_blobs(outcome: importing.Outcome) -> None:
    store = None
    for digest in outcome.added:
        if store is None:
            from dgxie.catalog.images import blob_store

            store = blob_store(site().data_dir)
        store.remove(digest)
