"""`dgxie firmware scan|report|changes|baseline|endpoint|stage|update`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dgxie.cli.common import actor, console, context, dump_json, err_console, session
from dgxie.cli.common import site as cli_site
from dgxie.cli.firmware_update_cmd import update_
from dgxie.errors import Invalid
from dgxie.firmware import baseline as bl
from dgxie.firmware import compliance, endpoints, packages, service
from dgxie.nodes import service as nodes

app = typer.Typer(help="BMC firmware inventory, baselines and compliance.", no_args_is_help=True, rich_markup_mode=None)
endpoint_app = typer.Typer(help="Extra Redfish endpoints of a node (e.g. an HGX baseboard).", no_args_is_help=True,
                           rich_markup_mode=None)
baseline_app = typer.Typer(help="Firmware baselines (firmware/*.yaml).", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(endpoint_app, name="endpoint")
app.add_typer(baseline_app, name="baseline")


SOME_FAILED = 2  # `firmware scan`: some nodes' BMCs could not be read (their results say why)


@app.command("scan")
def scan(node: list[str] = typer.Argument(None, help="hostnames or MACs"),
         all_: bool = typer.Option(False, "--all", help="every node with a BMC"),
         as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Read the firmware inventory of nodes' BMCs concurrently and store it (with history).
    Exit 0: every node scanned; 1: bad input, nothing scanned; 2: some nodes failed (unreachable,
    refused, ...), the others are stored."""
    if not node and not all_:
        raise Invalid("name nodes to scan, or --all")
    ctx = context()
    with session() as s:
        targets = service.scan_targets(s, node or [], all_=all_)
        with Progress(TextColumn("scan"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[last]}"),
                      TimeElapsedColumn(), console=err_console, transient=as_json) as bar:
            task = bar.add_task("scan", total=len(targets), last="")

            def tick(host: str, ok: bool) -> None:
                bar.update(task, advance=1, last=f"{host} {'ok' if ok else 'FAILED'}")

            results = service.scan(s, ctx.site, targets, actor=actor(), progress=tick)
    if as_json:
        dump_json(results)
        if any(not r.ok for r in results):
            raise typer.Exit(SOME_FAILED)
        return
    t = Table("node", "result", "components", "model", "requests", "detail")
    for r in results:
        t.add_row(r.node, "ok" if r.ok else f"[red]{r.error_kind}[/]", str(r.components), r.model or "",
                  str(r.requests), r.error if not r.ok else "; ".join(r.notes)[:200])
    console.print(t)
    failed = sum(1 for r in results if not r.ok)
    err_console.print(f"scanned {len(results) - failed} of {len(results)} node(s); {failed} failed")
    if failed:
        raise typer.Exit(SOME_FAILED)


@app.command("report")
def report(fmt: str = typer.Option("table", "--format", help="table | json | csv | html"),
           node: str | None = typer.Option(None, help="only this node"),
           component: str | None = typer.Option(None, help="only this component: an Id or a shell-style glob, "
                                                          "e.g. 'HGX_FW_GPU_SXM_*'"),
           status: str | None = typer.Option(None, help="only rows with this status, e.g. outdated"),
           problems: bool = typer.Option(False, "--problems", help="only rows that are not compliant")) -> None:
    """Compliance of each node's latest inventory against its platform's baseline."""
    if fmt not in ("table", "json", "csv", "html"):
        raise Invalid(f"--format: table, json, csv or html, not {fmt!r}")
    with session() as s:
        data = compliance.rows(s, cli_site(), node=node, component=component, status=status)
    if problems:
        data = [r for r in data if r["status"] != "compliant"]
    if fmt == "json":
        print(json.dumps(data, indent=2))
    elif fmt == "csv":
        print(compliance.to_csv(data), end="")
    elif fmt == "html":
        print(compliance.to_html(data), end="")
    else:
        colour = {"compliant": "green", "outdated": "red", "ahead": "cyan", "missing": "yellow", "unknown": "dim"}
        t = Table("node", "component", "installed", "required", "status", "hint",
                  caption=" ".join(f"{k}={v}" for k, v in compliance.summary(data).items()))
        for r in data:
            t.add_row(r["node"], r["component"] or "", r["installed"] or "", r["required"] or "",
                      f"[{colour[r['status']]}]{r['status']}[/]", r["hint"] or "")
        console.print(t)


@app.command("changes")
def changes(since: str = typer.Option("7d", help="7d, 12h, 30m or an ISO 8601 time"),
            node: list[str] = typer.Option([], help="limit to these nodes (repeat)"),
            as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """What firmware changed since a time (by comparing stored scans)."""
    with session() as s:
        ns = [nodes.get_node(s, n) for n in node] or None
        data = service.changes(s, service.parse_since(since), ns)
    if as_json:
        print(json.dumps(data, indent=2))
        return
    t = Table("node", "component", "before", "after", "change", "scanned_at", caption=f"{len(data)} change(s)")
    for r in data:
        t.add_row(r["node"], r["component"], r["before"] or "", r["after"] or "", r["changed"], r["scanned_at"])
    console.print(t)


@baseline_app.command("check")
def baseline_check(files: list[Path] = typer.Argument(None, help="baseline files (default: those in force)"),
                   node: str | None = typer.Option(None, help="also check these baselines' Ids against this "
                                                              "node's last scan")) -> None:
    """Validate baselines (FILEs, or those in force: the shipped ones with firmware.baselines' files
    over them; each line names the file); with --node, report the entries of those baselines that
    the node's last inventory does not have. Exit 1 on any problem."""
    site = cli_site()
    paths = list(files) if files else bl.site_files(site.firmware.baselines)
    found = bl.load_files(paths)
    for path, b in zip(paths, found, strict=True):
        err_console.print(f"{path}: ok ({b.platform}, {len(b.requirements)} entries, models {', '.join(b.models)})",
                          soft_wrap=True, highlight=False)
    if node is not None:
        with session() as s:
            n = nodes.get_node(s, node)
            problems = compliance.baseline_problems(s, site, n, found)
        if problems:
            raise Invalid("\n".join(problems))

@endpoint_app.command("add")
def endpoint_add(node: str = typer.Argument(..., help="hostname or MAC"),
                 name: str = typer.Argument(..., help="endpoint name"),
                 url: str = typer.Argument(..., help="the endpoint's Redfish URL"),
                 user: str | None = typer.Option(None, help="default: the node's BMC user"),
                 password_file: Path | None = typer.Option(None, help="default: the node's BMC credentials")) -> None:
    """Add an extra Redfish endpoint to a node (scanned with its BMC)."""
    password = None
    if password_file is not None:
        try:
            password = password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise Invalid(f"--password-file {password_file}: {exc.strerror}") from None
    with session() as s:
        endpoints.add_endpoint(s, cli_site(), nodes.get_node(s, node), name=name, url=url, username=user,
                               password=password, actor=actor())
    err_console.print(f"{node}: endpoint {name} added")


@endpoint_app.command("list")
def endpoint_list(node: str = typer.Argument(..., help="hostname or MAC")) -> None:
    """List a node's extra firmware endpoints."""
    with session() as s:
        eps = endpoints.list_endpoints(s, nodes.get_node(s, node))
        dump_json([{"name": e.name, "url": e.url, "username": e.username,
                    "password_set": e.password_enc is not None} for e in eps])


@endpoint_app.command("remove")
def endpoint_remove(node: str = typer.Argument(..., help="hostname or MAC"),
                    name: str = typer.Argument(..., help="endpoint name")) -> None:
    """Remove one of a node's extra firmware endpoints."""
    with session() as s:
        endpoints.remove_endpoint(s, nodes.get_node(s, node), name, actor=actor())
    err_console.print(f"{node}: endpoint {name} removed")


@app.command("stage")
def stage(file: Path = typer.Argument(..., help="firmware package file"),
          sha256: str | None = typer.Option(None, help="expected sha256 (checked)"),
          as_json: bool = typer.Option(False, "--json", help="print JSON")) -> None:
    """Stage a firmware package that dgxie serves to BMCs over HTTP; prints its ImageURI."""
    pkg = packages.stage(cli_site(), file, sha256)
    out = {"name": pkg.name, "sha256": pkg.sha256, "size": pkg.size, "url": pkg.url(cli_site())}
    dump_json(out) if as_json else print(out["url"])


app.command("update")(update_)
