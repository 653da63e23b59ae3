"""/api/v1/profiles: install profiles (admin to change, viewer to read)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from dgxie.api.auth import Admin, Viewer
from dgxie.api.deps import SessionDep, SiteDep
from dgxie.api.limits import JsonRoute
from dgxie.api.openapi import conflict
from dgxie.catalog import profiles
from dgxie.catalog.schemas import ProfileIn, ProfileOut, ProfileUpdate
from dgxie.errors import NotFound
from dgxie.tokens import Principal

router = APIRouter(prefix="/profiles", tags=["profiles"], route_class=JsonRoute)


@router.get("", response_model=list[ProfileOut])
def list_profiles(s: SessionDep, _: Principal = Viewer) -> list[ProfileOut]:
    """Every profile, from the API and from the config file (`source`)."""
    return [profiles.to_out(p) for p in profiles.list_profiles(s)]


@router.post("", response_model=ProfileOut, status_code=201, responses=conflict("the name is taken"))
def create_profile(body: ProfileIn, s: SessionDep, site: SiteDep, who: Principal = Admin) -> ProfileOut:
    """A new profile: an image, a template set, a role and vars (bounded, docs/api.md)."""
    return profiles.to_out(profiles.create_profile(s, site, body, actor=who.actor))


@router.get("/{name}", response_model=ProfileOut)
def get_profile(name: str, s: SessionDep, _: Principal = Viewer) -> ProfileOut:
    """One profile by name."""
    return profiles.to_out(profiles.profile_by_name(s, name, missing=NotFound))


@router.patch("/{name}", response_model=ProfileOut)
def update_profile(name: str, body: ProfileUpdate, s: SessionDep, site: SiteDep, who: Principal = Admin) -> ProfileOut:
    """Change the fields present."""
    p = profiles.profile_by_name(s, name, missing=NotFound)
    return profiles.to_out(profiles.update_profile(s, site, p, body, actor=who.actor))


@router.delete("/{name}", status_code=204, responses=conflict("nodes use the profile"))
def delete_profile(name: str, s: SessionDep, who: Principal = Admin) -> Response:
    """Delete a profile no node uses."""
    profiles.delete_profile(s, profiles.profile_by_name(s, name, missing=NotFound), actor=who.actor)
    return Response(status_code=204)
