"""Pure APT protocol code: deb822, Release, Packages, dependency closure, paths, manifests."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from dgxie.blobstore import BlobStore
from dgxie.config import Settings
from dgxie.errors import ConfigError
from dgxie.mirror.apt import repository as apt
from dgxie.mirror.apt import tree
from dgxie.mirror.manifest import FileEntry, Manifest

RELEASE = """Origin: Test
Suite: stable
Valid-Until: Sat, 01 Jan 2000 00:00:00 UTC
Acquire-By-Hash: yes
MD5Sum:
 d41d8cd98f00b204e9800998ecf8427e 0 main/binary-amd64/Packages
SHA256:
 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855        0 main/binary-amd64/Packages
 0000000000000000000000000000000000000000000000000000000000000001       20 main/binary-amd64/Packages.xz
 0000000000000000000000000000000000000000000000000000000000000002       30 main/binary-amd64/Packages.gz
 0000000000000000000000000000000000000000000000000000000000000003       30 contrib/binary-amd64/Packages.gz
"""


def pkg(name: str, depends: str = "", provides: str = "") -> str:
    lines = [f"Package: {name}", "Version: 1", "Architecture: amd64", f"Filename: pool/{name}.deb", "Size: 1",
             "SHA256: " + "a" * 64]
    if depends:
        lines.append(f"Depends: {depends}")
    if provides:
        lines.append(f"Provides: {provides}")
    return "\n".join(lines)


def test_release_parse_and_selection() -> None:
    rel = apt.parse_release(RELEASE)
    assert rel.by_hash and rel.fields["origin"] == "Test"
    assert rel.files["main/binary-amd64/Packages.gz"].size == 30
    chosen = [f.path for f in apt.select_indexes(rel, ["main"], ["amd64"])]
    assert chosen == ["main/binary-amd64/Packages", "main/binary-amd64/Packages.gz", "main/binary-amd64/Packages.xz"]
    assert [f.path for f in apt.packages_variants(rel, "main/binary-amd64/")] == [
        "main/binary-amd64/Packages", "main/binary-amd64/Packages.xz", "main/binary-amd64/Packages.gz"]
    with pytest.raises(apt.AptError, match="main/binary-arm64 is not in the Release file"):
        apt.select_indexes(rel, ["main"], ["arm64"])
    with pytest.raises(apt.AptError, match="expired"):
        apt.check_valid_until(rel, datetime(2001, 1, 1, tzinfo=UTC))
    apt.check_valid_until(rel, datetime(1999, 1, 1, tzinfo=UTC))


def test_release_refuses_unsafe_or_empty() -> None:
    with pytest.raises(apt.AptError, match="no SHA256"):
        apt.parse_release("Origin: x\n")
    with pytest.raises(apt.AptError, match="unsafe path"):
        apt.parse_release("SHA256:\n " + "a" * 64 + " 1 ../../etc/passwd\n")
    with pytest.raises(apt.AptError, match="unsafe path"):
        apt.parse_packages(pkg("x").replace("pool/x.deb", "/etc/shadow"))


def test_packages_and_closure() -> None:
    text = "\n\n".join([pkg("app", "libc6 (>= 2.3), libfoo | libbar, mta"), pkg("libc6"), pkg("libbar"),
                        pkg("postfix", provides="mta"), pkg("exim", "libc6", provides="mta"), pkg("other")])
    ps = apt.parse_packages(text)
    assert ps[0].depends == (("libc6",), ("libfoo", "libbar"), ("mta",))
    assert apt.closure(ps, ["app"]) == {"app", "libc6", "libbar", "postfix", "exim"}
    assert apt.closure(ps, ["lib*"]) == {"libc6", "libbar"}
    assert apt.closure(ps, ["nvidia-*"]) == set()
    with pytest.raises(apt.AptError, match="lacks filename"):
        apt.parse_packages("Package: x\nVersion: 1\n")


def test_filter_terms_essential_and_priority() -> None:
    """`?essential` and `?priority(P)` select by field; Pre-Depends count as dependencies."""
    text = "\n\n".join([
        pkg("dpkg") + "\nEssential: yes\nPriority: required\nPre-Depends: libzstd1",
        pkg("libzstd1") + "\nPriority: optional",
        pkg("apt", "libapt") + "\nPriority: required",
        pkg("libapt"),
        pkg("cron") + "\nPriority: important",
        pkg("vim") + "\nPriority: optional\nEssential: no",
    ])
    ps = apt.parse_packages(text)
    assert [p.name for p in ps if p.essential] == ["dpkg"]
    assert ps[0].priority == "required" and ps[0].depends == (("libzstd1",),)
    assert apt.closure(ps, ["?essential"]) == {"dpkg", "libzstd1"}
    assert apt.closure(ps, ["?priority(required)"]) == {"dpkg", "libzstd1", "apt", "libapt"}
    assert apt.closure(ps, ["?priority(important)", "vi*"]) == {"cron", "vim"}
    assert apt.closure(ps, ["?priority(standard)"]) == set()
    for bad in ("?priority(urgent)", "?essentials", "?name(x)", "?priority()"):
        with pytest.raises(apt.AptError, match="unknown filter term"):
            apt.closure(ps, [bad])


def test_filter_terms_checked_in_the_config(tmp_path: Path) -> None:
    from dgxie.config import load

    cfg = tmp_path / "c.yaml"
    head = "mirrors:\n  - {name: d, kind: apt, url: http://x, suites: [s], keyring: /k, filter: "
    cfg.write_text(head + '["?essential", "?priority(required)", nginx*]}\n')
    assert load(cfg).mirrors[0].filter == ["?essential", "?priority(required)", "nginx*"]  # type: ignore[union-attr]
    cfg.write_text(head + '["?priority(urgent)"]}\n')
    with pytest.raises(ConfigError, match=r"mirrors\[0\]\.filter: unknown filter term '\?priority\(urgent\)'"):
        load(cfg)


def test_paragraph_continuations() -> None:
    (f, _), = apt.paragraphs("Package: a\nDescription: one\n two\n  three\n")
    assert f["description"] == "one\ntwo\nthree"


def test_config_validation(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="absolute"):
        Settings(mirrors=[{"name": "u", "kind": "apt", "url": "http://x", "suites": ["s"], "keyring": "k"}])
    with pytest.raises(Exception, match="at least 60"):
        Settings(mirrors=[{"name": "u", "kind": "apt", "url": "http://x", "suites": ["s"], "keyring": "/k",
                           "interval": "5s"}])
    s = Settings(mirrors=[{"name": "u", "kind": "apt", "url": "http://x/", "suites": ["s"], "keyring": "/k",
                           "interval": "6h"}])
    assert s.mirrors[0].interval == 21600 and s.mirrors[0].url == "http://x"  # type: ignore[union-attr]
    from dgxie.config import load

    cfg = tmp_path / "c.yaml"
    cfg.write_text('mirrors:\n  - {name: u, kind: apt, url: "ftp://x", suites: [s], keyring: k}\n'
                   '  - {name: v, kind: apt, url: "http://r", suites: [s], keyring: /k, bogus: 1}\n')
    with pytest.raises(ConfigError) as exc:
        load(cfg)
    assert exc.value.detail.splitlines() == [
        "mirrors[0].url: not an http(s) URL ('ftp://x')",
        "mirrors[0].keyring: the keyring must be an absolute path (got 'k')",
        "mirrors[1].bogus: Extra inputs are not permitted"]


def test_snapshot_publish_prune_and_paths(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    root = tmp_path / "m"
    d1 = store.put_bytes(b"one")
    ids = []
    for i in range(4):
        man = Manifest("m", "apt", snapshot=f"2026010{i}", files={"a/b": FileEntry(d1, 3)})
        tree.materialize(store, root, man)
        tree.publish(root, man.snapshot)
        ids.append(man.snapshot)
        assert (root / "current/a/b").read_bytes() == b"one"
    tree.publish(root, ids[0])
    # the 2 newest are kept, and the current one (rolled back to) too
    assert tree.prune(root, 2) == [ids[1]]
    assert tree.list_snapshots(root) == [ids[0], ids[2], ids[3]] and tree.current(root) == ids[0]
    bad = Manifest("m", "apt", snapshot="x", files={"../evil": FileEntry(d1, 3)})
    with pytest.raises(ValueError, match="unsafe"):
        tree.materialize(store, root, bad)
    assert not (root / "snapshots/x").exists() and not list((root / "snapshots").glob(".tmp-*"))
    assert Manifest.from_json(bad.to_json()).files == bad.files
