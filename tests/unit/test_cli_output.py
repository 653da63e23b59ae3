"""CLI output a person can read and a script can trust (dgxie/cli/output.py): identifiers are never cut,
piped tables are tab-separated in full, records read as `key: value`."""

from __future__ import annotations

import io

from rich.table import Table

from dgxie.cli.output import TableConsole, hide_first, human, record_lines

MACS = [f"aa:bb:cc:00:00:{i:02x}" for i in range(3)]
HOSTS = [f"dgx-h100-rack{i:02d}-node{i:03d}.cluster.example.org" for i in range(3)]
COMPONENTS = ["HGX_FW_GPU_SXM_1", "HostBMC_0_FirmwareVersion_extra_long", "CPLDMB_0"]
VERSIONS = ["96.00.5E.00.01", "23.09.20-nvidia-dgx-h100-build.4711", "0.2.1.9"]


def _table() -> Table:
    t = Table("hostname", "mac", "component", "version", "detail", caption="3 of 3")
    for h, m, c, v in zip(HOSTS, MACS, COMPONENTS, VERSIONS, strict=True):
        t.add_row(h, m, c, v, "the BMC answered slowly but every component was read without error")
    return t


def _tty(width: int) -> tuple[TableConsole, io.StringIO]:
    buf = io.StringIO()
    return TableConsole(file=buf, force_terminal=True, width=width, color_system=None), buf


def test_terminal_table_never_cuts_an_identifier() -> None:
    for width in (200, 120, 80):
        con, buf = _tty(width)
        con.print(_table())
        out = buf.getvalue()
        hidden = out.split("hidden at this width:")[1] if "hidden at this width:" in out else ""
        assert "…" not in out and "..." not in out, out
        for column, values in (("hostname", HOSTS), ("mac", MACS), ("component", COMPONENTS),
                               ("version", VERSIONS)):
            assert all(v in out for v in values) or column in hidden, (width, column, out)
        assert all(h in out for h in HOSTS + MACS), out
        assert max(len(line) for line in out.splitlines()) <= width, out
    assert "hidden" not in out.split("hidden at this width:")[0]


def test_a_narrow_terminal_hides_columns_and_says_so() -> None:
    con, buf = _tty(200)
    con.print(_table())
    assert all(v in buf.getvalue() for v in HOSTS + MACS + COMPONENTS + VERSIONS), buf.getvalue()
    con, buf = _tty(60)
    con.print(_table())
    out = buf.getvalue()
    for ident in HOSTS:
        assert ident in out, out
    assert "hidden at this width:" in out and "detail" in out.split("hidden at this width:")[1]
    assert "-o json" in out


def test_piped_table_is_tab_separated_and_complete(capsys: object) -> None:
    out, err = io.StringIO(), io.StringIO()
    con = TableConsole(file=out, width=40)  # not a terminal
    import sys
    real = sys.stderr
    sys.stderr = err
    try:
        con.print(_table())
    finally:
        sys.stderr = real
    lines = out.getvalue().splitlines()
    assert lines[0].split("\t") == ["hostname", "mac", "component", "version", "detail"]
    assert [line.split("\t")[:4] for line in lines[1:]] == [list(r) for r in zip(HOSTS, MACS, COMPONENTS, VERSIONS,
                                                                                   strict=True)]
    assert err.getvalue() == "3 of 3\n"


def test_records_read_as_a_person_expects() -> None:
    assert human(None) == "-" and human([]) == "-" and human(["rack1", "rack2"]) == "rack1, rack2"
    assert human(True) == "yes"
    lines = record_lines({"hostname": "dgx01", "ip": None, "tags": ["rack1", "h100"],
                          "bmc": {"url": "https://10.0.1.5", "password_set": False},
                          "interfaces": [{"mac": "aa:bb:cc:00:00:01", "name": None}], "facts": {}})
    text = "\n".join(lines)
    assert "None" not in text and "[" not in text and "{" not in text, text
    assert lines == ["hostname:   dgx01", "ip:         -", "tags:       rack1, h100", "bmc:",
                     "  url:          https://10.0.1.5", "  password_set: no", "interfaces:",
                     "  - mac=aa:bb:cc:00:00:01 name=-", "facts:      -"]


def test_hide_first_names_the_columns_to_give_up_first() -> None:
    t = Table("hostname", "mac", "ip", "profile", "state", "tags")
    t.add_row(HOSTS[0], MACS[0], "10.100.200.42", "ubuntu-2404-gpu", "enrolled", "rack07,h100")
    con, buf = _tty(100)
    con.print(hide_first(t, "tags", "profile", "ip"))
    out = buf.getvalue()
    assert "enrolled" in out and HOSTS[0] in out and MACS[0] in out, out
    assert "hidden at this width: profile, tags" in out, out


def test_messages_are_printed_as_they_are() -> None:
    """A message is never wrapped, styled or emoji-coded from its text, on a terminal or piped."""
    url = "sqlite:////var/lib/dgxie/a/very/long/path/that/goes/past/the/width/of/the/console/dgxie.db"
    for console, buf in (_tty(40), (lambda b: (TableConsole(file=b, width=40), b))(io.StringIO())):
        console.print(f"enrolled esx1 (54:ab:3a:00:00:02) [rack1] at {url}")
        assert buf.getvalue() == f"enrolled esx1 (54:ab:3a:00:00:02) [rack1] at {url}\n"
