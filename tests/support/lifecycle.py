"""Shared helpers of the lifecycle tests: in-memory nodes for rendering, config files, a served dgxie."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dgxie.crypto import SecretBox
from dgxie.models import Image, Interface, Node, Profile
from dgxie.nodes.credentials import boot_token
from dgxie.sections import AptMirrorConfig, HandoffConfig, SiteConfig
from dgxie.site import Site

SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGdgxietestkeyonlyforthetestsuite000000000 admin@dgxie"

TEMPLATES = {"ubuntu": "ubuntu/autoinstall", "debian": "debian/preseed", "rhel": "rhel/kickstart"}


def site(*, global_vars: dict[str, Any] | None = None, site_vars: dict[str, Any] | None = None,
         templates_dir: Path | None = None) -> Site:
    """A site as the config file would give it: site `lab`, one APT mirror `ubuntu-noble`."""
    ident = SiteConfig(name="lab", domain="lab.example", ssh_authorized_keys=[SSH_KEY], vars=site_vars or {})
    mirror = AptMirrorConfig(name="ubuntu-noble", kind="apt", url="http://archive.example/ubuntu", suites=["noble"],
                             keyring=Path("/usr/share/keyrings/ubuntu-archive-keyring.gpg"))
    return Site(box=_box(), data_dir=Path("/nonexistent"), public_url="http://10.0.0.1:8080", identity=ident,
                vars=global_vars or {}, mirrors=(mirror,), handoff=HandoffConfig(templates_dir=templates_dir))


def _box() -> SecretBox:
    from cryptography.fernet import Fernet

    return SecretBox(Fernet.generate_key())


def node(os: str = "ubuntu", *, profile_vars: dict[str, Any] | None = None, node_vars: dict[str, Any] | None = None,
         macs: tuple[str, ...] = ("aa:bb:cc:00:00:01", "aa:bb:cc:00:00:02"), image: bool = True) -> Node:
    """An unsaved node with a profile and image: enough to render without a database."""
    img = Image(name=f"{os}-img", os=os, arch="x86_64", kernel="vmlinuz", initrd="initrd", cmdline="", files={}) if image else None
    prof = Profile(name=f"{os}-worker", template=TEMPLATES[os], role="k8s-worker", vars=profile_vars or {}, image=img)
    n = Node(hostname="dgx01", ip="10.0.0.11", role="k8s-worker", state="enrolled", tags=[], facts={},
             vars=node_vars or {}, boot_nonce="tok-" + "x" * 28, profile=prof)
    n.interfaces = [Interface(mac=m) for m in macs]
    return n


def enroll(ctx: Any, hostname: str = "dgx01", mac: str = "aa:bb:cc:00:00:01", *, os: str = "ubuntu",
           profile_vars: dict[str, Any] | None = None, node_vars: dict[str, Any] | None = None,
           state: str | None = None) -> str:
    """Register an image + profile for `os` (once) and enroll a node on it; returns its boot token."""
    from sqlalchemy import select

    from dgxie import db
    from dgxie.catalog import images, profiles
    from dgxie.catalog.schemas import ImageIn, ProfileIn
    from dgxie.nodes import service
    from dgxie.nodes.schemas import NodeCreate

    with db.session_scope(ctx.sessions) as s:
        prof_name = f"{os}-worker"
        if s.scalar(select(Profile).where(Profile.name == prof_name)) is None:
            images.create_image(s, ImageIn(name=f"{os}-img", os=os, kernel="vmlinuz", initrd="initrd"), actor="test")
            profiles.create_profile(s, ctx.site, ProfileIn(name=prof_name, image=f"{os}-img", template=TEMPLATES[os],
                                                            role="k8s-worker", vars=profile_vars or {}), actor="test")
        n = service.create_node(s, ctx.site, NodeCreate(hostname=hostname, mac=mac, profile=prof_name,
                                                        vars=node_vars or {}), actor="test")
        if state is not None:
            n.state = state
        return boot_token(ctx.site.box, n)


def state_of(ctx: Any, hostname: str) -> str:
    from dgxie import db
    from dgxie.nodes import service

    with db.session_scope(ctx.sessions) as s:
        return service.get_node(s, hostname).state


def token_of(ctx: Any, hostname: str) -> str:
    from dgxie import db
    from dgxie.nodes import service

    with db.session_scope(ctx.sessions) as s:
        return boot_token(ctx.site.box, service.get_node(s, hostname))


def kinds(ctx: Any, hostname: str) -> list[str]:
    from dgxie import db, events
    from dgxie.nodes import service

    with db.session_scope(ctx.sessions) as s:
        return [e.kind for e in events.list_events(s, node=service.get_node(s, hostname), limit=1000)]


def install_credential(ctx: Any, token: str) -> str:
    """Mint the node's `install` credential, as a fetch of its config does ("none" for a token that
    names no node, so a test can still post to a wrong token)."""
    from dgxie import db
    from dgxie.errors import NotFound
    from dgxie.nodes import credentials

    with db.session_scope(ctx.sessions) as s:
        try:
            node = credentials.node_by_boot_token(s, ctx.site.box, token)
        except NotFound:
            return "none"
        return credentials.mint(node, "install")
