"""Profiles: create, update, delete, and the sync of profiles declared in the config file."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dgxie.catalog.images import image_by_name
from dgxie.catalog.schemas import ProfileIn, ProfileOut, ProfileUpdate
from dgxie.errors import Conflict, Invalid
from dgxie.events import record
from dgxie.models import Node, Profile
from dgxie.site import Site


def to_out(p: Profile) -> ProfileOut:
    return ProfileOut(id=p.id, name=p.name, image=p.image.name if p.image else None, template=p.template,
                      role=p.role, description=p.description, vars=dict(p.vars), source=p.source,
                      created_at=p.created_at, updated_at=p.updated_at)


def profile_by_name(session: Session, name: str, *, missing: type[Exception] = Invalid) -> Profile:
    """The named profile; a missing one is Invalid (422) when referenced, NotFound when addressed."""
    p = session.scalar(select(Profile).where(Profile.name == name))
    if p is None:
        raise missing(f"unknown profile {name!r}")
    return p


MAC_MATCH_VAR = "mac_match"


def profile_for_mac(session: Session, mac: str) -> Profile | None:
    """The profile a node enrolled without one gets: the first, in creation order, whose var
    `mac_match` (a regex) re.matches the lower-case, colon-separated MAC. This is DGXIE's
    machines.json rule (first entry in file order; an import creates them in that order)."""
    for p in session.scalars(select(Profile).order_by(Profile.id)).unique():
        pattern = p.vars.get(MAC_MATCH_VAR)
        if isinstance(pattern, str):
            try:
                if re.match(pattern, mac.lower()):
                    return p
            except re.error:
                continue
    return None


def create_profile(session: Session, site: Site, data: ProfileIn, *, actor: str, source: str = "api") -> Profile:
    if session.scalar(select(Profile).where(Profile.name == data.name)) is not None:
        raise Conflict(f"profile {data.name} already exists")
    site.check_role(data.role)
    image = image_by_name(session, data.image) if data.image else None
    p = Profile(name=data.name, image=image, template=data.template, role=data.role,
                description=data.description, vars=data.vars, source=source)
    session.add(p)
    session.flush()
    record(session, actor=actor, kind="profile.create", reason=f"profile {p.name} created", data={"profile": p.name})
    return p


def update_profile(session: Session, site: Site, p: Profile, data: ProfileUpdate, *, actor: str) -> Profile:
    fields = data.model_fields_set
    if "image" in fields:
        p.image = image_by_name(session, data.image) if data.image else None
    if "role" in fields:
        site.check_role(data.role)
        p.role = data.role
    for name in ("template", "description", "vars"):
        if name in fields and getattr(data, name) is not None:
            setattr(p, name, getattr(data, name))
    session.flush()
    record(session, actor=actor, kind="profile.update", reason=f"profile {p.name} updated: {', '.join(sorted(fields))}",
           data={"profile": p.name})
    return p


def delete_profile(session: Session, p: Profile, *, actor: str) -> None:
    users = session.scalar(select(func.count()).select_from(Node).where(Node.profile_id == p.id)) or 0
    if users:
        raise Conflict(f"profile {p.name} is used by {users} node(s)")
    record(session, actor=actor, kind="profile.delete", reason=f"profile {p.name} deleted", data={"profile": p.name})
    session.delete(p)
    session.flush()


def list_profiles(session: Session) -> list[Profile]:
    return list(session.scalars(select(Profile).order_by(Profile.name)).unique())


def sync_config_profiles(session: Session, site: Site) -> None:
    """Create or update the profiles declared in the config file (the file wins for those names)."""
    for name, spec in site.profiles.items():
        data = ProfileIn(name=name, image=None, template=spec.template, role=spec.role,
                         description=spec.description, vars=spec.vars)
        p = session.scalar(select(Profile).where(Profile.name == name))
        image = None
        if spec.image:
            try:
                image = image_by_name(session, spec.image)
            except Invalid:
                image = None  # registered later with `dgxie image add`; the boot decision reports it
        if p is None:
            p = create_profile(session, site, data, actor="config", source="config")
        elif (p.template, p.role, p.description, p.vars) != (spec.template, spec.role, spec.description, spec.vars):
            update_profile(session, site, p,
                           ProfileUpdate(template=spec.template, role=spec.role, description=spec.description,
                                         vars=spec.vars), actor="config")
        if p.image != image and image is not None:
            p.image = image
        p.source = "config"
    session.flush()
