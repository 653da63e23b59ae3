"""The imaging codecs and helpers without a bootstrap: the cpio newc writer (checked with GNU cpio),
the ELF reader (checked against real programs), recipes and their input key, the mirror package
check, and the scratch removal that never deletes through a mount."""

from __future__ import annotations

import io
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from dgxie.errors import Invalid
from dgxie.imaging import bootstrap, cpio, elf, recipe, source
from dgxie.mirror.apt import repository as apt

needs_cpio = pytest.mark.skipif(shutil.which("cpio") is None, reason="needs GNU cpio")


def _entries() -> list[cpio.Entry]:
    return [cpio.file("usr/bin/hello", b"#!/bin/sh\necho hi\n", 0o755), cpio.directory("usr"),
            cpio.directory("usr/bin"), cpio.symlink("bin", "usr/bin"), cpio.file("etc/odd", b"x" * 5),
            cpio.directory("etc", 0o700), cpio.char_device("dev/console", 5, 1), cpio.directory("dev"),
            cpio.file("empty", b"")]


@needs_cpio
def test_cpio_archive_reads_back_with_gnu_cpio(tmp_path: Path) -> None:
    buf = io.BytesIO()
    n = cpio.write(_entries(), buf, mtime=1700000000)
    data = buf.getvalue()
    assert n == len(data) and len(data) % 4 == 0 and data.startswith(b"070701")
    listing = subprocess.run(["cpio", "-t", "-v", "--quiet"], input=data, capture_output=True, check=True).stdout
    names = [line.split()[-1] if " -> " not in line else line.split()[-3] for line in listing.decode().splitlines()]
    assert names == ["bin", "dev", "dev/console", "empty", "etc", "etc/odd", "usr", "usr/bin", "usr/bin/hello"]
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["cpio", "-i", "-d", "-m", "--quiet", "--no-absolute-filenames"], input=data, cwd=out,
                   check=True)
    assert (out / "usr/bin/hello").read_bytes() == b"#!/bin/sh\necho hi\n"
    assert stat.S_IMODE((out / "usr/bin/hello").stat().st_mode) == 0o755
    assert os.readlink(out / "bin") == "usr/bin" and (out / "etc/odd").read_bytes() == b"xxxxx"
    assert stat.S_IMODE((out / "etc").stat().st_mode) == 0o700
    assert (out / "usr/bin/hello").stat().st_mtime == 1700000000
    assert stat.S_ISCHR((out / "dev/console").stat().st_mode) and os.major((out / "dev/console").stat().st_rdev) == 5


def test_cpio_is_deterministic_and_refuses_bad_entries(tmp_path: Path) -> None:
    a, b = io.BytesIO(), io.BytesIO()
    cpio.write(_entries(), a, mtime=7)
    cpio.write(list(reversed(_entries())), b, mtime=7)
    assert a.getvalue() == b.getvalue()
    for bad in ("/etc/passwd", "a/../b", "", "a//b", "."):
        with pytest.raises(cpio.CpioError, match="unsafe path"):
            cpio.write([cpio.file(bad, b"")], io.BytesIO())
    with pytest.raises(cpio.CpioError, match="two entries"):
        cpio.write([cpio.file("a", b"1"), cpio.directory("a")], io.BytesIO())
    with pytest.raises(cpio.CpioError, match="unsupported"):
        cpio.write([cpio.Entry("fifo", stat.S_IFIFO | 0o600)], io.BytesIO())


@needs_cpio
def test_cpio_tree_entries_match_the_tree(tmp_path: Path) -> None:
    root = tmp_path / "t"
    (root / "d/e").mkdir(parents=True)
    (root / "d/e/f").write_bytes(os.urandom(70001))
    os.chmod(root / "d/e/f", 0o640)
    os.symlink("/d/e/f", root / "abs")
    entries = cpio.tree_entries(root)
    assert [e.path for e in entries] == ["d", "abs", "d/e", "d/e/f"]
    with (tmp_path / "a.cpio").open("wb") as f:
        cpio.write(entries, f)
    out = tmp_path / "out"
    out.mkdir()
    subprocess.run(["cpio", "-i", "-d", "--quiet", "-F", str(tmp_path / "a.cpio")], cwd=out, check=True)
    assert (out / "d/e/f").read_bytes() == (root / "d/e/f").read_bytes()
    assert os.readlink(out / "abs") == "/d/e/f"
    os.mkfifo(root / "fifo")
    with pytest.raises(cpio.CpioError, match="not a directory, file or symlink"):
        cpio.tree_entries(root)


def test_elf_reads_interpreter_needed_and_runpath() -> None:
    prog = Path(os.path.realpath(shutil.which("gpgv") or "/usr/bin/gpgv"))
    info = elf.parse(prog.read_bytes())
    assert info.interpreter == "/lib64/ld-linux-x86-64.so.2"
    assert "libc.so.6" in info.needed and "libgcrypt.so.20" in info.needed
    libc = elf.parse(Path("/lib/x86_64-linux-gnu/libc.so.6").read_bytes())
    assert "ld-linux-x86-64.so.2" in libc.needed
    with pytest.raises(elf.ElfError, match="not an ELF"):
        elf.parse(b"#!/bin/sh\n")
    with pytest.raises(elf.ElfError, match="64-bit little-endian"):
        elf.parse(b"\x7fELF\x01\x01" + b"\0" * 60)


def test_recipe_loads_and_the_key_follows_every_input(tmp_path: Path) -> None:
    shipped = recipe.load("debian")
    assert shipped.os == "debian" and "cloud-init" in shipped.packages and len(shipped.hooks) >= 3
    agent = recipe.load("agent")
    assert agent.os == "dgxie-agent" and "{public_url}" in agent.cmdline and "virtio_blk" in agent.modules
    d = tmp_path / "r"
    shutil.copytree(shipped.path, d)
    r = recipe.load(str(d))
    args = {"mirror": "debian", "snapshot": "S1", "suite": "bookworm", "packages": ["a", "b"], "public_url": "http://x"}
    base = recipe.input_key(r, **args)  # type: ignore[arg-type]
    assert base == recipe.input_key(r, **(args | {"packages": ["b", "a", "a"]}))  # type: ignore[arg-type]
    for change in ({"snapshot": "S2"}, {"suite": "trixie"}, {"packages": ["a"]}, {"public_url": "http://y"},
                   {"mirror": "other"}):
        assert recipe.input_key(r, **(args | change)) != base, change  # type: ignore[arg-type]
    (d / "hooks/90-identity.sh").write_text((d / "hooks/90-identity.sh").read_text() + "# edited\n")
    assert recipe.input_key(r, **args) != base  # type: ignore[arg-type]
    with pytest.raises(Invalid, match="no recipe 'nope'"):
        recipe.load("nope")
    (d / "recipe.yaml").write_text("os: debian\nsuite: bookworm\nhooks: [../../etc/passwd]\n")
    with pytest.raises(Invalid, match="not a file of the recipe directory"):
        recipe.load(str(d))
    (d / "recipe.yaml").write_text("os: debian\nsuite: bookworm\nbogus: 1\n")
    with pytest.raises(Invalid, match="unknown key 'bogus'"):
        recipe.load(str(d))


def _pkg(name: str, depends: str = "", extra: str = "") -> str:
    lines = [f"Package: {name}", "Version: 1", "Architecture: amd64", f"Filename: pool/{name}.deb", "Size: 1",
             "SHA256: " + "a" * 64]
    if depends:
        lines.append(f"Depends: {depends}")
    return "\n".join(lines) + extra


def test_check_packages_names_what_the_mirror_lacks(tmp_path: Path) -> None:
    index = apt.parse_packages("\n\n".join([
        _pkg("base-files", extra="\nEssential: yes"), _pkg("init", "systemd-sysv | sysvinit-core", "\nPriority: required"),
        _pkg("systemd-sysv"), _pkg("cloud-init", "python3, netbase | ifupdown"), _pkg("python3", "mta"),
        _pkg("exim", extra="\nProvides: mta"), _pkg("netbase"), _pkg("broken", "libgone (>= 2)")]))
    src = source.Source("debian", "S", tmp_path, tmp_path / "k", ("main",), ("amd64",), 0)
    source.check_packages(src, index, ["cloud-init"], "debian-12")
    with pytest.raises(Invalid, match=r"^mirror debian lacks package openssh-server \(needed by image debian-12\)$"):
        source.check_packages(src, index, ["cloud-init", "openssh-server"], "debian-12")
    with pytest.raises(Invalid, match=r"lacks package libgone \(needed by broken for image x\)"):
        source.check_packages(src, index, ["broken"], "x")
    without = [p for p in index if p.name != "systemd-sysv"]
    with pytest.raises(Invalid, match=r"lacks package systemd-sysv \| sysvinit-core \(needed by init for image x\)"):
        source.check_packages(src, without, [], "x")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root (bind mount)")
def test_scratch_removal_never_deletes_through_a_mount(tmp_path: Path) -> None:
    precious = tmp_path / "mirror"
    precious.mkdir()
    (precious / "pool.deb").write_bytes(b"keep me")
    with bootstrap.scratch(tmp_path / "data", "t-") as tmp:
        inside = tmp / "root" / "mnt"
        inside.mkdir(parents=True)
        subprocess.run(["mount", "--bind", str(precious), str(inside)], check=True)
        assert (inside / "pool.deb").exists()
    assert not tmp.exists()
    assert (precious / "pool.deb").read_bytes() == b"keep me"


def test_localboot_config_is_what_the_rescue_parser_takes() -> None:
    from dgxie.imaging.localboot import embedded

    text = (Path(__file__).resolve().parents[2] / "images" / "agent" / "localboot.cfg").read_text()
    cfg = embedded(text)
    lines = cfg.splitlines()
    assert lines and not any(ln.startswith("#") or not ln.strip() for ln in lines)
    assert "'" not in cfg  # a single quote would swallow the lines after it
    assert lines[1].startswith("search --no-floppy --set=root --file /EFI/BOOT/BOOTX64.EFI")
    assert lines.index("boot") < lines.index("exit")
