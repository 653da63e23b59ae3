"""Install configs over HTTP with the render cache (`dgxie.install.cache`): a change made in the
database (by this process or another) shows on the next fetch, and the credential a fetch carries is
the node's live one (SQLite and PostgreSQL)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from dgxie import db
from dgxie.app import create_app
from dgxie.context import Context
from dgxie.install.cache import CACHE
from dgxie.models import Image, Node, Profile
from tests.support.lifecycle import SSH_KEY, enroll, install_credential

SETTINGS = {"site": {"name": "lab", "domain": "lab.example", "ssh_authorized_keys": [SSH_KEY]},
            "handoff": {"enabled": False}, "boot": {"trusted_networks": ["10.99.0.0/24"]}}


@pytest.fixture
def sctx(make_ctx: Callable[..., Context]) -> Context:
    return make_ctx(**SETTINGS)


@pytest.fixture
def sc(sctx: Context) -> Iterator[TestClient]:
    with TestClient(create_app(sctx), client=("10.99.0.1", 50000)) as c:
        yield c


def credential_in(text: str) -> str:
    found = set(re.findall(r"/events/([A-Za-z0-9_-]+)", text))
    assert len(found) == 1
    return found.pop()


def edit(ctx: Context, fn: Callable[[Node], object]) -> None:
    with db.session_scope(ctx.sessions) as s:
        fn(s.scalars(select(Node).where(Node.hostname == "dgx01")).one())


def test_database_changes_show_on_the_next_fetch(sc: TestClient, sctx: Context) -> None:
    tok = enroll(sctx)
    url = f"/boot/n/{tok}/user-data"
    first = sc.get(url).text
    hits = CACHE.hits
    assert sc.get(url).status_code == 200 and CACHE.hits == hits + 1
    edit(sctx, lambda n: setattr(n, "vars", {"packages": ["node-pkg"]}))
    assert "node-pkg" in sc.get(url).text
    edit(sctx, lambda n: setattr(n.profile, "vars", {"keyboard_layout": "profile-kb"}))
    assert "profile-kb" in sc.get(url).text
    edit(sctx, lambda n: setattr(n.profile.image, "name", "renamed-img"))  # type: ignore[union-attr]
    assert "renamed-img" in sc.get(url).text

    def other_profile(n: Node) -> None:
        assert n.profile is not None
        n.profile = Profile(name="second", template="ubuntu/autoinstall", role="k8s-worker", vars={},
                            image=Image(name="img-2", os="ubuntu", arch="x86_64", kernel="k", initrd="i",
                                        cmdline="", files={}))
    edit(sctx, other_profile)
    assert "profile second, image img-2" in sc.get(url).text
    assert first != sc.get(url).text


def test_a_refetch_carries_the_live_credential_and_anything_that_ends_it_mints_anew(
        sc: TestClient, sctx: Context) -> None:
    tok = enroll(sctx)
    other = enroll(sctx, "dgx02", "aa:bb:cc:00:00:02")
    url = f"/boot/n/{tok}/user-data"
    one = credential_in(sc.get(url).text)
    assert credential_in(sc.get(url).text) == one  # the same live credential, no new write
    assert credential_in(sc.get(f"/boot/n/{other}/user-data").text) != one  # never another node's

    install_credential(sctx, tok)  # another process minted one: the held one is dead
    two = credential_in(sc.get(url).text)
    assert two != one

    edit(sctx, lambda n: setattr(n, "credential_at", n.credential_at - timedelta(hours=7)))  # older than REUSE_FOR
    three = credential_in(sc.get(url).text)
    assert three not in (one, two)

    edit(sctx, lambda n: setattr(n, "credential_hash", None))  # a state change drops it
    four = credential_in(sc.get(url).text)
    assert four not in (one, two, three)
    for dead in (one, two, three):
        assert sc.post(f"/boot/n/{tok}/events/{dead}", content='{"event": "finished"}').status_code == 401
    assert sc.post(f"/boot/n/{tok}/events/{four}", content='{"event": "finished"}').status_code == 200


def test_a_new_boot_token_is_a_new_config(sc: TestClient, sctx: Context) -> None:
    from dgxie.nodes.credentials import boot_token, rotate_boot_token

    tok = enroll(sctx)
    sc.get(f"/boot/n/{tok}/user-data")
    with db.session_scope(sctx.sessions) as s:
        new = rotate_boot_token(sctx.site.box, s.scalars(select(Node).where(Node.hostname == "dgx01")).one())
        assert new == boot_token(sctx.site.box, s.scalars(select(Node)).one())
    assert sc.get(f"/boot/n/{tok}/user-data").status_code == 404
    text = sc.get(f"/boot/n/{new}/user-data").text
    assert f"/boot/n/{new}/" in text and tok not in text
