"""The start-up check of a site's roles: what config validation cannot see (files on disk).

Its own module, apart from `handoff.service`: `dgxie node import` runs it and needs none of the
inventory builders, nor Jinja (imported here only when a role names a cloud-init script).
"""

from __future__ import annotations

from dgxie.errors import ConfigError
from dgxie.site import Site


def check_roles(site: Site) -> None:
    """ConfigError naming every role whose script template or playbook does not exist."""
    problems: list[str] = []
    override = site.handoff.templates_dir
    for name, role in sorted(site.roles.items()):
        if role.bootstrap == "cloud-init" and role.script:
            from dgxie.boot import templates

            if templates.find(role.script, override) is None:
                where = ", ".join(map(str, templates.search_path(override)))
                problems.append(f"roles.{name}.script: template {role.script} not found under {where}")
        if role.bootstrap == "ansible" and role.playbook and site.handoff.playbook_dir is not None:
            pb = site.handoff.playbook_dir / role.playbook
            if not pb.is_file():
                problems.append(f"roles.{name}.playbook: {pb} not found")
    if problems:
        raise ConfigError("\n".join(problems))
