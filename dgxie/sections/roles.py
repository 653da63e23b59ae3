"""Sections of what nodes become: profiles, roles and their handoff, the site identity, installs."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from dgxie.sections.common import Strict


class ProfileConfig(Strict):
    image: str | None = None
    template: str = "ubuntu/autoinstall"
    role: str | None = None
    description: str = ""
    vars: dict[str, Any] = {}


class RoleConfig(Strict):
    groups: list[str] = []
    bootstrap: Literal["ansible", "cloud-init", "none"] = "none"
    playbook: str | None = None
    script: str | None = None
    drain: str | None = None
    resume: str | None = None


class HandoffConfig(Strict):
    """Role handoff (docs/handoff.md): the ansible bootstrap worker and the drain/resume hooks."""

    enabled: bool = True
    poll_seconds: float = Field(default=5.0, gt=0)
    concurrency: int = Field(default=4, ge=1, le=256)
    timeout_seconds: float = Field(default=3600.0, gt=0)
    hook_timeout_seconds: float = Field(default=300.0, gt=0)
    output_tail_bytes: int = Field(default=8192, ge=256, le=1 << 20)
    ansible_playbook: str = "ansible-playbook"
    playbook_dir: Path | None = None
    inventory_script: Path | None = None
    templates_dir: Path | None = None


def default_roles() -> dict[str, RoleConfig]:
    """DeepOps' group layout for the built-in roles (see docs/roles.md)."""
    return {
        "k8s-control": RoleConfig(groups=["kube_control_plane", "etcd"]),
        "k8s-worker": RoleConfig(groups=["kube_node"]),
        "slurm-controller": RoleConfig(groups=["slurm-master"]),
        "slurmd": RoleConfig(groups=["slurm-node"]),
        "slurm-login": RoleConfig(groups=["slurm-login"]),
    }


class SiteConfig(Strict):
    """The site's identity and the variables every node's install config sees (docs/lifecycle.md)."""

    name: str = "dgxie"
    domain: str = "cluster.local"
    vars: dict[str, Any] = {}
    ssh_authorized_keys: list[str] = []
    timezone: str = "UTC"


class InstallConfig(Strict):
    """Installer callbacks and the install timeout (docs/lifecycle.md)."""

    timeout_minutes: int = Field(default=90, ge=1)
    sweep_seconds: float = Field(default=60, gt=0)
    callback_max_bytes: int = Field(default=256 * 1024, ge=1024)
    progress_interval_seconds: float = Field(default=5.0, ge=0)
