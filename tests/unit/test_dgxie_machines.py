"""DGXIE's machines.json and env file as dgxie images and profiles (pure)."""

from __future__ import annotations

import pytest

from dgxie.nodes.dgxie_machines import parse_env, parse_machine, shadowed, slug_of
from tests.support.paths import SHARED


def test_env_file() -> None:
    env = parse_env((SHARED / "reference/deepops/dgxie-pxe-env.example").read_text())
    assert env["HTTP_PORT"] == "13370" and env["DHCP_START"] == "192.168.1.2" and env["DGX_KERN_EXTRA"] == ""
    assert parse_env("# c\nA='x y'\nB=\"z\"\nnot a line\n") == {"A": "x y", "B": "z"}


def test_http_port_and_url_function_are_translated() -> None:
    m = parse_machine("DGX 1!", {"mac": "d8:c4:97.*", "kernel": "http://localhost:$HTTP_PORT/iso/linux",
                                 "initrd": "http://localhost:$HTTP_PORT/iso/initrd.gz",
                                 "cmdline": 'url={{ URL "http://localhost:$HTTP_PORT/dgx.seed" }} '
                                            '-c {{URL "https://mirror.example/boot.cfg"}}'}, "8000")
    assert m.slug == "dgx-1" and m.kernel.local == "iso/linux" and m.kernel.url == "http://localhost:8000/iso/linux"
    assert m.cmdline == "url={public_url}/images/dgx-1/dgx.seed -c {public_url}/images/dgx-1/boot.cfg"
    seed, cfg = m.files[2], m.files[3]
    assert (seed.served, seed.local, seed.role) == ("dgx.seed", "dgx.seed", "file")
    assert (cfg.local, cfg.url) == (None, "https://mirror.example/boot.cfg")


@pytest.mark.parametrize(("entry", "message"), [
    ({"mac": "aa.*"}, "needs 'mac' and 'kernel'"),
    ({"mac": "(", "kernel": "http://h/k"}, "not a valid regex"),
    ({"mac": "a", "kernel": "ftp://h/k"}, "not an http(s) URL"),
    ({"mac": "a", "kernel": "http://localhost:8080/k"}, "not on DGXIE's HTTP_PORT 13370"),
    ({"mac": "a", "kernel": "http://localhost:13370/../etc/passwd"}, "outside DGXIE's HTTP root"),
    ({"mac": "a", "kernel": "http://h/a/linux", "initrd": ["http://h/a/i", "http://h/b/i"]}, "2 initrds"),
    ({"mac": "a", "kernel": "http://h/a/linux", "initrd": ["http://h/b/linux"]}, "served as linux"),
    ({"mac": "a", "kernel": "http://h/k", "cmdline": "{{ Other }}"}, "other than {{ URL"),
])
def test_bad_entries_say_what_is_wrong(entry: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_machine("x", entry, "13370")


def test_shadowed_entries_are_named() -> None:
    ms = [parse_machine(k, {"mac": mac, "kernel": "http://h/k"}, "13370")
          for k, mac in [("a", "2c:56:dc.*"), ("b", "2c:56:dc:47:f5:1f"), ("c", "00:24:e8:de:bf:53")]]
    (warning,) = shadowed(ms)
    assert warning.startswith("entry 'b': never chosen by MAC, entry 'a'")


@pytest.mark.parametrize(("key", "slug"), [(".hidden", "hidden"), ("DGX 1!", "dgx-1"), ("__x__", "x"),
                                           ("!!!", "dgxie"), ("a" * 80, "a" * 64)])
def test_entry_names_become_valid_dgxie_names(key: str, slug: str) -> None:
    from dgxie.validation import check_name

    assert slug_of(key) == slug and check_name(slug) == slug
