"""`install.refetch`: a pure re-fetch of an install config is answered without the ORM, byte for
byte as the full path; anything that would change the answer, refuse it or write goes the full
way (SQLite and PostgreSQL, through the app)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, select

from dgxie import db
from dgxie.app import create_app
from dgxie.context import Context
from dgxie.install.cache import CACHE
from dgxie.models import DhcpLease, Event, Interface, Node
from dgxie.models.types import utcnow
from dgxie.nodes.origin import REFUSED
from tests.support.lifecycle import SSH_KEY, enroll

TRUSTED, LEASED, STRANGER = "10.99.0.1", "10.98.0.7", "10.98.0.8"
MAC = "aa:bb:cc:00:00:01"


@pytest.fixture
def sctx(make_ctx: Callable[..., Context], tmp_path: Path) -> Context:
    (tmp_path / "tpl" / "ubuntu").mkdir(parents=True)
    return make_ctx(site={"name": "lab", "domain": "lab.example", "ssh_authorized_keys": [SSH_KEY]},
                    handoff={"enabled": False, "templates_dir": str(tmp_path / "tpl")},
                    boot={"trusted_networks": ["10.99.0.0/24"]})


@pytest.fixture
def sc(sctx: Context) -> Iterator[TestClient]:
    with TestClient(create_app(sctx), client=(TRUSTED, 50000)) as c:
        yield c


def client(sc: TestClient, peer: str) -> TestClient:
    """Another peer on the same running app (its lifespan is `sc`'s)."""
    return TestClient(sc.app, client=(peer, 50000))


def edit(ctx: Context, fn: Callable[[Node], object]) -> None:
    with db.session_scope(ctx.sessions) as s:
        fn(s.scalars(select(Node).where(Node.hostname == "dgx01")).one())


def node(ctx: Context) -> Node:
    with db.session_scope(ctx.sessions) as s:
        n = s.scalars(select(Node).where(Node.hostname == "dgx01")).one()
        s.expunge(n)
        return n


def primed(sc: TestClient, url: str) -> str:
    """The full path twice (the first fetch starts the install and mints the credential; the second
    records the rows it rendered from), then one re-fetch answered without the ORM."""
    second = [sc.get(url) for _ in range(2)][-1]
    before = CACHE.refetches
    third = sc.get(url)
    assert CACHE.refetches == before + 1
    assert (third.status_code, third.text, third.headers["content-type"]) == (
        200, second.text, second.headers["content-type"])
    return third.text


def full_way(sc: TestClient, url: str) -> object:
    before = CACHE.refetches
    r = sc.get(url)
    assert CACHE.refetches == before, "answered by install.refetch"
    return r


def test_a_pure_refetch_is_the_full_paths_answer(sc: TestClient, sctx: Context) -> None:
    tok = enroll(sctx)
    text = primed(sc, f"/boot/n/{tok}/user-data")
    assert "/events/" in text and node(sctx).state == "installing"
    primed(sc, f"/boot/n/{tok}/meta-data")  # no credential in it


def test_changes_in_any_row_go_the_full_way(sc: TestClient, sctx: Context) -> None:
    tok = enroll(sctx)
    url = f"/boot/n/{tok}/user-data"
    primed(sc, url)

    def add_interface(n: Node) -> None:
        n.interfaces.append(Interface(mac="aa:bb:cc:00:00:09", name="eno9"))

    for change in (lambda n: setattr(n, "vars", {"packages": ["node-pkg"]}),
                   lambda n: setattr(n.profile, "vars", {"keyboard_layout": "profile-kb"}),
                   lambda n: setattr(n.profile.image, "arch", "aarch64"),  # type: ignore[union-attr]
                   add_interface):
        edit(sctx, change)
        assert full_way(sc, url).status_code == 200  # type: ignore[attr-defined]
        primed(sc, url)
    assert "node-pkg" in sc.get(url).text and "profile-kb" in sc.get(url).text


def test_a_stale_contact_a_state_with_no_config_and_a_dead_credential_go_the_full_way(
        sc: TestClient, sctx: Context) -> None:
    tok = enroll(sctx)
    url = f"/boot/n/{tok}/user-data"
    primed(sc, url)
    old = utcnow() - timedelta(minutes=5)
    edit(sctx, lambda n: setattr(n, "install_seen_at", old))
    assert full_way(sc, url).status_code == 200  # type: ignore[attr-defined]
    assert node(sctx).install_seen_at > old  # the full path wrote the contact
    one = primed(sc, url)
    edit(sctx, lambda n: setattr(n, "credential_at", n.credential_at - timedelta(hours=7)))  # past REUSE_FOR
    two = full_way(sc, url).text  # type: ignore[attr-defined]
    assert two != one  # a new credential, minted by the full path
    primed(sc, url)
    edit(sctx, lambda n: setattr(n, "state", "installed"))
    assert full_way(sc, url).status_code == 409  # type: ignore[attr-defined]


def test_only_the_nodes_address_is_answered(sc: TestClient, sctx: Context) -> None:
    """A peer holding a live lease of the node's MAC is answered without the ORM; once the lease is
    gone, the same peer is refused (403 and an event), as is any other address."""
    tok = enroll(sctx)
    url = f"/boot/n/{tok}/user-data"
    with db.session_scope(sctx.sessions) as s:
        s.add(DhcpLease(mac=MAC, ip=LEASED, subnet="10.98.0.0/24", expires_at=utcnow() + timedelta(hours=1)))
    leased, stranger = client(sc, LEASED), client(sc, STRANGER)
    primed(leased, url)
    assert full_way(stranger, url).status_code == 403  # type: ignore[attr-defined]
    with db.session_scope(sctx.sessions) as s:
        s.execute(delete(DhcpLease))
    assert full_way(leased, url).status_code == 403  # type: ignore[attr-defined]
    with db.session_scope(sctx.sessions) as s:
        assert s.scalars(select(Event.kind).where(Event.kind == REFUSED)).all()


def test_a_template_edited_on_disk_goes_the_full_way(sc: TestClient, sctx: Context, tmp_path: Path) -> None:
    tpl = tmp_path / "tpl" / "ubuntu" / "meta-data.j2"
    tpl.write_text("instance-id: {{ instance_id }}\nlocal-hostname: {{ hostname }}\n")
    tok = enroll(sctx)
    url = f"/boot/n/{tok}/meta-data"
    primed(sc, url)
    tpl.write_text("instance-id: {{ instance_id }}\nlocal-hostname: {{ hostname }}-edited\n")
    os.utime(tpl, (tpl.stat().st_atime + 5, tpl.stat().st_mtime + 5))  # a new mtime even on a coarse clock
    assert "dgx01-edited" in full_way(sc, url).text  # type: ignore[attr-defined]


@pytest.mark.parametrize("later", [timedelta(seconds=11), timedelta(hours=7)],
                         ids=["contact-due", "credential-past-reuse"])
def test_time_alone_ending_a_pure_refetch_goes_the_full_way(
        sc: TestClient, sctx: Context, monkeypatch: pytest.MonkeyPatch, later: timedelta) -> None:
    """With no row changed: the installer's contact falls due (SEEN_RESOLUTION), or the held
    credential grows older than REUSE_FOR; the full path then writes the contact or mints anew."""
    from dgxie.install import refetch

    tok = enroll(sctx)
    url = f"/boot/n/{tok}/user-data"
    primed(sc, url)
    monkeypatch.setattr(refetch, "utcnow", lambda: utcnow() + later)
    if later > timedelta(minutes=1):  # the credential alone: the contact is kept fresh meanwhile
        monkeypatch.setattr(refetch.callbacks, "writes_on_fetch", lambda *_: False)
    assert full_way(sc, url).status_code == 200  # type: ignore[attr-defined]
