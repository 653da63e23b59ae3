"""`dgxie node add|list|show|set|delete|import`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from dgxie import events
from dgxie.cli.common import actor, console, dump_json, err_console, session, site
from dgxie.cli.lazy import Lazy, group
from dgxie.cli.output import Format, hide_first, json_option, output_option, render_record, wants_json
from dgxie.errors import Invalid
from dgxie.nodes import service
from dgxie.nodes.schemas import NodeCreate, NodeOut, NodeUpdate
from dgxie.validation import parse

COMMANDS = {  # node commands that live in other modules, imported only when used (cli/lazy.py)
    "import": Lazy("dgxie.cli.import_cmd", "import_", "Import nodes, and DGXIE's boot entries as images and "
                   "profiles: all or nothing, idempotent."),
    "reprovision": Lazy("dgxie.cli.lifecycle_cmd", "reprovision", "Send NODE back to `enrolled` with a new boot "
                        "token, so its next boot reinstalls it; with a BMC, set PXE for the next boot and "
                        "power-cycle it (exit 1 if that fails: the node stays enrolled)."),
    "watch": Lazy("dgxie.cli.lifecycle_cmd", "watch",
                  "Follow NODE's events until it is installed (exit 0) or failed (exit 1); Ctrl-C stops."),
    "enroll": Lazy("dgxie.cli.lifecycle_cmd", "enroll",
                   "Enroll the discovered NODE (its MACs and commissioning facts stay) with a profile."),
    "erase": Lazy("dgxie.cli.lifecycle_cmd", "erase",
                  "Wipe NODE's disks with the deploy agent at its next network boot; it returns to discovered."),
    "power": Lazy("dgxie.cli.power_cmd", "power",
                  "Power a node on, off or cycle it through its BMC (Redfish or IPMI), or read its state; or "
                  "power many nodes in waves (`dgxie node power on --all --batch 50 --interval 30`)."),
    "bootdev": Lazy("dgxie.cli.power_cmd", "bootdev", "Set the boot device for the next boot only."),
}

app = typer.Typer(help="Node inventory.", no_args_is_help=True, rich_markup_mode=None, cls=group(COMMANDS))


def _password(path: Path | None) -> str | None:
    if path is None:
        return None
    try:
        return path.read_text().rstrip("\r\n")
    except OSError as exc:
        raise Invalid(f"--bmc-password-file {path}: {exc.strerror}") from None


def _show(node: NodeOut) -> None:
    render_record(node.model_dump(mode="json"))


@app.command("add")
def add(hostname: str = typer.Argument(..., help="the node's hostname"),
        mac: str = typer.Option(..., help="primary MAC"),
        ip: str | None = typer.Option(None, help="IPv4 address the node is given"),
        profile: str | None = typer.Option(None, help="profile to install (see dgxie profile list)"),
        role: str | None = typer.Option(None, help="site role, e.g. slurmd"),
        tag: list[str] = typer.Option([], help="repeat for several tags"),
        extra_mac: list[str] = typer.Option([], "--extra-mac", help="another interface's MAC"),
        bmc: str | None = typer.Option(None, help="BMC URL, e.g. https://10.0.1.5"),
        bmc_user: str | None = typer.Option(None, help="BMC user name"),
        bmc_password_file: Path | None = typer.Option(None, help="file holding the BMC password"),
        as_json: bool = json_option()) -> None:
    """Enroll a node."""
    data: dict[str, Any] = {"hostname": hostname, "mac": mac, "ip": ip, "profile": profile, "role": role,
                            "tags": tag, "interfaces": [{"mac": m} for m in extra_mac]}
    if profile is None:
        del data["profile"]  # none given: a profile whose mac_match matches, if any (docs/migrating-from-dgxie.md)
    if bmc or bmc_user or bmc_password_file:
        data["bmc"] = {"url": bmc, "username": bmc_user, "password": _password(bmc_password_file)}
    body = parse(NodeCreate, data)
    with session() as s:
        out = service.to_out(service.create_node(s, site(), body, actor=actor()))
    dump_json(out) if as_json else err_console.print(f"enrolled {out.hostname} ({out.mac})")


@app.command("list")
def list_(state: str | None = typer.Option(None, help="only nodes in this state"),
          role: str | None = typer.Option(None, help="only nodes with this role"),
          tag: str | None = typer.Option(None, help="only nodes with this tag"),
          profile: str | None = typer.Option(None, help="only nodes with this profile"),
          limit: int = typer.Option(1000, min=1, max=service.MAX_PAGE, help="at most this many nodes"),
          offset: int = typer.Option(0, min=0, help="skip this many nodes first"),
          output: Format = output_option(), as_json: bool = json_option()) -> None:
    """List nodes, optionally filtered."""
    with session() as s:
        nodes, total = service.list_nodes(s, state=state, role=role, tag=tag, profile=profile, limit=limit,
                                          offset=offset)
        rows = [service.to_out(n) for n in nodes]
    if wants_json(output, as_json):
        dump_json(rows)
        return
    t = Table("hostname", "mac", "ip", "profile", "role", "state", "tags", caption=f"{len(rows)} of {total}")
    hide_first(t, "tags", "role", "profile", "ip")  # at a narrow terminal; hostname, MAC and state stay
    for r in rows:
        t.add_row(r.hostname, r.mac or "", r.ip or "", r.profile or "", r.role or "", r.state, ",".join(r.tags))
    console.print(t)


@app.command("show")
def show(node: str = typer.Argument(..., help="hostname or MAC"), output: Format = output_option(),
         as_json: bool = json_option(),
         with_events: bool = typer.Option(False, "--events", help="also print the node's events")) -> None:
    """Show one node (by hostname or MAC)."""
    with session() as s:
        n = service.get_node(s, node)
        out = service.to_out(n)
        evs = events.list_events(s, node=n, limit=1000) if with_events else []
    if wants_json(output, as_json):
        dump_json(out.model_dump(mode="json") | ({"events": [e.model_dump(mode="json") for e in evs]}
                                                   if with_events else {}))
        return
    _show(out)
    for e in evs:
        console.print(f"{e.time:%Y-%m-%d %H:%M:%S} {e.actor:>16} {e.kind:<14} "
                      f"{(e.from_state or '') + ('->' + e.to_state if e.to_state else ''):<22} {e.reason}")


@app.command("set")
def set_(node: str = typer.Argument(..., help="hostname or MAC"),
         hostname: str | None = typer.Option(None, help="new hostname"),
         mac: str | None = typer.Option(None, help="new primary MAC"),
         ip: str | None = typer.Option(None, help="'' clears it"),
         profile: str | None = typer.Option(None, help="'' clears it"),
         role: str | None = typer.Option(None, help="'' clears it"),
         tag: list[str] | None = typer.Option(None, help="replace the tags (repeat)"),
         bmc: str | None = typer.Option(None, help="BMC URL, e.g. https://10.0.1.5"),
         bmc_user: str | None = typer.Option(None, help="BMC user name"),
         bmc_password_file: Path | None = typer.Option(None, help="file holding the BMC password"),
         as_json: bool = json_option()) -> None:
    """Change a node's fields; only the options given change."""
    data: dict[str, Any] = {}
    for key, value in (("hostname", hostname), ("mac", mac), ("ip", ip), ("profile", profile), ("role", role)):
        if value is not None:
            data[key] = value or None
    if tag:
        data["tags"] = tag
    bmc_data = {k: v for k, v in (("url", bmc), ("username", bmc_user),
                                  ("password", _password(bmc_password_file))) if v is not None}
    if bmc_data:
        data["bmc"] = bmc_data
    if not data:
        raise Invalid("nothing to change (see dgxie node set --help)")
    body = parse(NodeUpdate, data)
    with session() as s:
        n = service.get_node(s, node)
        had_password = n.bmc_password_enc is not None
        out = service.to_out(service.update_node(s, site(), n, body, actor=actor()))
    dump_json(out) if as_json else err_console.print(f"updated {out.hostname}")
    if had_password and not out.bmc.password_set and "password" not in bmc_data:
        err_console.print(f"note: {out.hostname}: the BMC URL or user changed, so its stored password was dropped; "
                          "give it again with --bmc-password-file")


@app.command("delete")
def delete(node: str = typer.Argument(..., help="hostname or MAC")) -> None:
    """Remove a node from the inventory (its events are kept)."""
    with session() as s:
        n = service.get_node(s, node)
        name = n.hostname
        service.delete_node(s, n, actor=actor())
    err_console.print(f"deleted {name}")
