"""The kernel arguments an installer needs to find its dgxie config (pure).

An image's cmdline is the operator's; a profile's template decides which installer boots it and
where that installer must look. When the cmdline does not say, dgxie adds what is missing, so an
`ubuntu/autoinstall` profile never boots a subiquity that waits at a prompt for a config it was
never told about:

    ubuntu   `autoinstall` and `ds=nocloud-net;s={base}`  (subiquity; cloud-init's NoCloud seed)
    debian   `auto=true priority=critical url={base}preseed`  (d-i; preseed/url)
    rhel     `inst.ks={base}kickstart`  (anaconda; `ks=` is the old spelling, also accepted)
    image    nothing: the deploy agent is booted with its own arguments (dgxie.ipxe.render)
    external nothing: the installer brings its own config

An argument already present is never changed, even when it points somewhere else (the operator's
choice; `what_points_elsewhere` lets `--explain` say so). Arguments are added before a `---`
(after it, the kernel passes arguments to the installed system, not the installer).
"""

from __future__ import annotations

import re

_NEEDS: dict[str, list[tuple[re.Pattern[str], str]]] = {
    "ubuntu": [(re.compile(r"(^|\s)autoinstall(\s|$)"), "autoinstall"),
               (re.compile(r"(^|\s)ds=nocloud(-net)?(;|\\;|\s|$)"), "ds=nocloud-net;s={base}")],
    "debian": [(re.compile(r"(^|\s)auto(=true)?(\s|$)"), "auto=true"),
               (re.compile(r"(^|\s)priority=critical(\s|$)"), "priority=critical"),
               (re.compile(r"(^|\s)(preseed/)?url="), "url={base}preseed")],
    "rhel": [(re.compile(r"(^|\s)(inst\.)?ks="), "inst.ks={base}kickstart")],
}
_NEEDS["rocky"] = _NEEDS["rhel"]
_SEED = re.compile(r"(?:^|\s)(?:ds=nocloud(?:-net)?(?:;|\\;)s=|(?:preseed/)?url=|(?:inst\.)?ks=)(\S*)")


def family(template: str | None) -> str:
    return (template or "").split("/", 1)[0]


def complete(template: str | None, cmdline: str) -> tuple[str, list[str]]:
    """(`cmdline` with the arguments `template`'s installer needs added, what was added)."""
    needs = _NEEDS.get(family(template), [])
    head, sep, tail = cmdline.partition(" ---")
    if not sep and cmdline.strip() == "---":
        head, sep, tail = "", " ---", ""
    added = [arg for pattern, arg in needs if not pattern.search(head)]
    if not added:
        return cmdline, []
    head = " ".join(p for p in (head.strip(), *added) if p)
    return head + sep + tail, added


def what_points_elsewhere(cmdline: str) -> list[str]:
    """The config URLs on an expanded cmdline that are not under a dgxie seed base (`{base}`)."""
    return [u for u in _SEED.findall(cmdline) if "/boot/n/" not in u]
