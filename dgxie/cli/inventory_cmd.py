"""`dgxie inventory ansible [--list | --host H | --ini [--output F]]`, `dgxie inventory slurm`.

`dgxie inventory ansible` is an Ansible dynamic inventory script: `ansible-playbook -i SCRIPT`
calls it with `--list` (and, rarely, `--host H`), where SCRIPT is a two-line wrapper
(`docs/handoff.md`) or the one the bootstrap worker writes to `DATA_DIR/handoff/dgxie-inventory`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from dgxie.cli.common import err_console, session, site
from dgxie.errors import Invalid

app = typer.Typer(help="Ansible and Slurm inventories built from the nodes.", no_args_is_help=True,
                  rich_markup_mode=None)


def _write(text: str, output: Path | None) -> None:
    if output is None:
        print(text, end="" if text.endswith("\n") else "\n")
        return
    tmp = output.with_name(f".{output.name}.tmp")
    try:
        tmp.write_text(text)
        os.replace(tmp, output)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise Invalid(f"{output}: {exc.strerror}") from None
    err_console.print(f"wrote {output}")


@app.command("ansible")
def ansible(list_: bool = typer.Option(False, "--list", help="the whole inventory as JSON (Ansible's --list)"),
            host: str | None = typer.Option(None, "--host", help="one host's variables as JSON"),
            ini: bool = typer.Option(False, "--ini", help="a static INI inventory for DeepOps"),
            output: Path | None = typer.Option(None, "--output", "-o", help="write to FILE instead of stdout"),
            layout: str = typer.Option("head", help="head (kube_control_plane, ...) or hyphenated (kube-master, ...)"),
            all_states: bool = typer.Option(False, "--all", help="every node with a role, not just installed+"),
            ) -> None:
    """Print the Ansible inventory of every node with a role, in DeepOps' group layout."""
    from dgxie.handoff import service

    if sum([list_, host is not None, ini]) > 1:
        raise Invalid("use one of --list, --host H, --ini")
    with session() as s:
        the_site = site()
        if host is not None:
            text = json.dumps(service.ansible_host(s, the_site, host), indent=2, sort_keys=True)
        elif ini:
            text = service.ansible_ini(s, the_site, layout=layout, all_states=all_states)
        else:
            text = json.dumps(service.ansible_list(s, the_site, layout=layout, all_states=all_states), indent=2)
    _write(text, output)


@app.command("slurm")
def slurm(gres: bool = typer.Option(False, "--gres", help="print gres.conf instead of the slurm.conf lines"),
          partition_by: str = typer.Option("role", help="a PartitionName per role or per tag"),
          memory_reserve_percent: float = typer.Option(2.0, help="keep this much below the BMC's memory size"),
          output: Path | None = typer.Option(None, "--output", "-o", help="write to FILE instead of stdout"),
          all_states: bool = typer.Option(False, "--all", help="every node with a role, not only installed+")) -> None:
    """slurm.conf NodeName/PartitionName lines (or gres.conf) from the nodes' hardware facts."""
    from dgxie.handoff import service

    with session() as s:
        cfg = service.slurm_config(s, site(), by=partition_by, reserve_percent=memory_reserve_percent,
                                   all_states=all_states)
    for w in cfg.warnings:
        print(f"dgxie: warning: {w}", file=sys.stderr)
    _write(cfg.gres_conf if gres else cfg.slurm_conf, output)
