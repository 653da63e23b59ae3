"""The install-config cache (`dgxie.install.cache`): the same text as a fresh render, and a new
render whenever anything it depends on changes (node, token, profile, image, config, template).

Each test renders once, changes one input, and checks the next fetch shows the change; every test
also checks that an unchanged fetch was served from the cache, so none passes with the cache off.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest

from dgxie.install import seed
from dgxie.install.cache import SeedCache
from dgxie.models import Image, Node
from dgxie.site import Site
from tests.support.lifecycle import node, site

CRED = "c" * 43


def fetch(cache: SeedCache, s: Site, n: Node, artifact: str = "user-data", credential: str = CRED) -> str:
    return cache.render(s, n, artifact, credential=credential).text


def test_a_hit_is_byte_identical_to_a_fresh_render_with_that_credential() -> None:
    cache, s = SeedCache(), site()
    for os, artifacts in (("ubuntu", ("user-data", "meta-data", "vendor-data")), ("debian", ("preseed",)),
                          ("rhel", ("kickstart",))):
        n = node(os)
        for artifact in artifacts:
            fetch(cache, s, n, artifact, "first-" + "a" * 37)
            before = cache.hits
            got = fetch(cache, s, n, artifact, "second-" + "b" * 36)
            assert cache.hits == before + 1
            assert got == seed.render(s, n, artifact, credential="second-" + "b" * 36).text


def test_each_fetch_carries_its_own_credential_and_no_stand_in() -> None:
    cache, s, n = SeedCache(), site(), node()
    one, two = fetch(cache, s, n, credential="one" + "x" * 40), fetch(cache, s, n, credential="two" + "y" * 40)
    assert cache.hits == 1
    assert "one" + "x" * 40 in one and "one" + "x" * 40 not in two and "two" + "y" * 40 in two
    urls = set(re.findall(r"/events/([A-Za-z0-9_-]+)", one + two))
    assert urls == {"one" + "x" * 40, "two" + "y" * 40}


def _image(n: Node) -> Image:
    assert n.profile is not None and n.profile.image is not None
    return n.profile.image


CHANGES: dict[str, Callable[[Node], object]] = {
    "node vars": lambda n: setattr(n, "vars", {"packages": ["htop"]}),
    "node hostname": lambda n: setattr(n, "hostname", "dgx99"),
    "node interface": lambda n: setattr(n.interfaces[1], "mac", "aa:bb:cc:00:00:99"),
    "boot token": lambda n: setattr(n, "boot_nonce", "tok-" + "y" * 28),
    "profile vars": lambda n: setattr(n.profile, "vars", {"packages": ["nvtop"]}),
    "profile name": lambda n: setattr(n.profile, "name", "other-worker"),
    "image name": lambda n: setattr(_image(n), "name", "ubuntu-img-2"),
    "another image": lambda n: setattr(n.profile, "image", Image(name="noble-2", os="ubuntu", arch="x86_64",
                                                                  kernel="k", initrd="i", cmdline="", files={})),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_change_to_an_input_is_a_new_render(change: str) -> None:
    cache, s, n = SeedCache(), site(), node()
    old = fetch(cache, s, n)
    assert fetch(cache, s, n) == old and cache.hits == 1
    CHANGES[change](n)
    new = fetch(cache, s, n)
    assert new != old
    assert new == seed.render(s, n, "user-data", credential=CRED).text
    assert cache.misses == 2


def test_a_new_config_is_a_new_render() -> None:
    cache, n = SeedCache(), node()
    old = fetch(cache, site(), n)
    s2 = site(global_vars={"packages": ["from-the-new-config"]})
    assert "from-the-new-config" in fetch(cache, s2, n) and "from-the-new-config" not in old
    assert fetch(cache, s2, n) and cache.hits == 1


def test_a_template_edited_on_disk_is_a_new_render(tmp_path: Path) -> None:
    (tmp_path / "ubuntu").mkdir()
    tpl = tmp_path / "ubuntu" / "meta-data.j2"
    tpl.write_text("instance-id: {{ instance_id }}\nlocal-hostname: {{ hostname }}\n")
    cache, s, n = SeedCache(), site(templates_dir=tmp_path), node()
    assert fetch(cache, s, n, "meta-data") == fetch(cache, s, n, "meta-data") and cache.hits == 1
    tpl.write_text("instance-id: {{ instance_id }}\nlocal-hostname: {{ hostname }}-edited\n")
    import os
    os.utime(tpl, (tpl.stat().st_atime + 5, tpl.stat().st_mtime + 5))  # a new mtime even on a coarse clock
    assert "dgx01-edited" in fetch(cache, s, n, "meta-data")


def test_an_included_template_edited_on_disk_is_a_new_render(tmp_path: Path) -> None:
    (tmp_path / "ubuntu").mkdir()
    (tmp_path / "ubuntu" / "meta-data.j2").write_text('{% include "ubuntu/part.j2" %}')
    part = tmp_path / "ubuntu" / "part.j2"
    part.write_text("instance-id: {{ instance_id }}\n")
    cache, s, n = SeedCache(), site(templates_dir=tmp_path), node()
    assert fetch(cache, s, n, "meta-data") == fetch(cache, s, n, "meta-data") and cache.hits == 1
    part.write_text("instance-id: {{ instance_id }}\nlocal-hostname: included\n")
    import os
    os.utime(part, (part.stat().st_atime + 5, part.stat().st_mtime + 5))
    assert "local-hostname: included" in fetch(cache, s, n, "meta-data")


def test_a_template_that_encodes_the_credential_is_rendered_per_fetch(tmp_path: Path) -> None:
    (tmp_path / "ubuntu").mkdir()
    (tmp_path / "ubuntu" / "user-data.j2").write_text(
        "#cloud-config\nautoinstall:\n  version: 1\n  identity: {hostname: h, username: u, password: '!'}\n"
        "  late-commands: [{{ ('echo ' ~ (events_url | b64)) | yaml }}]\n")
    cache, s, n = SeedCache(), site(templates_dir=tmp_path), node()
    a, b = fetch(cache, s, n, credential="a" * 43), fetch(cache, s, n, credential="b" * 43)
    assert a != b and cache.hits == 0
    assert b == seed.render(s, n, "user-data", credential="b" * 43).text


def test_one_nodes_render_never_reaches_another() -> None:
    cache, s = SeedCache(), site()
    a, b = node(), node(macs=("aa:bb:cc:00:00:07",))
    b.hostname, b.boot_nonce, b.ip = "dgx02", "tok-" + "z" * 28, "10.0.0.12"
    a.id = b.id = 1  # even under the same slot (two databases, one process), the key tells them apart
    ta, tb = fetch(cache, s, a), fetch(cache, s, b)
    assert "dgx01" in ta and "dgx02" not in ta and "dgx02" in tb and "dgx01" not in tb


def test_the_reuse_window_in_docs_security_is_the_codes() -> None:
    from datetime import timedelta

    from dgxie.install.cache import REUSE_FOR

    doc = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    assert timedelta(hours=6) == REUSE_FOR and doc.count("under 6 h old") == 2
