"""A node's BMC settings: which URLs the site accepts, and when a stored password stays.

The BMC password is write-only, so whoever may change a node must not be able to send it
somewhere else. The one rule, applied here for the API, the CLI and the importer alike
(`apply_bmc`, called by `dgxie.nodes.service`): changing the URL's scheme, host or port, or the
user name, drops the stored password unless a new one (or an explicit null) comes in the same
request; a path change on the same host (another Redfish system of one service) keeps it.

Plain `http://` Redfish sends the credentials in clear (HTTP basic and the session body), so
such URLs are refused (422) unless the site sets `bmc.allow_insecure_http: true`; the drivers
refuse them at connect time too (`dgxie.bmc.drivers.connect`), for URLs stored before a site turned it
off. `ipmi://` (RMCP+ lanplus: the password itself never crosses the wire) is not affected.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from dgxie.errors import Invalid
from dgxie.models import Node
from dgxie.nodes.schemas import BmcIn
from dgxie.site import Site

_PORTS = {"http": 80, "https": 443, "ipmi": 623}


def origin(url: str | None) -> tuple[str, str, int] | None:
    """(scheme, host, port) of a BMC URL, with `redfish+` dropped and default ports filled in."""
    if not url:
        return None
    parts = urlsplit(url.removeprefix("redfish+"))
    try:
        port = parts.port
    except ValueError:
        port = None
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), port or _PORTS.get(scheme, 0)


def check_url_allowed(site: Site, url: str | None, *, field: str = "bmc.url") -> None:
    """Invalid (422) for a plain http:// URL unless the site allows insecure http."""
    if url and url.lower().startswith(("http://", "redfish+http://")) and not site.bmc.allow_insecure_http:
        raise Invalid(f"{field}: {url!r} is plain http:// (the BMC credentials would cross the network in "
                      "clear); use https://, or set bmc.allow_insecure_http: true in the site config")


def apply_bmc(site: Site, node: Node, bmc: BmcIn) -> list[str]:
    """Set the fields present in `bmc` on `node`; returns what made the stored password go
    (["url"], ["username"], both, or [] when it stayed or none was stored)."""
    fields = bmc.model_fields_set
    if "url" in fields:
        check_url_allowed(site, bmc.url)
    because: list[str] = []
    if node.bmc_password_enc is not None and "password" not in fields:
        if "url" in fields and origin(bmc.url) != origin(node.bmc_url):
            because.append("url")
        if "username" in fields and (bmc.username or None) != (node.bmc_username or None):
            because.append("username")
    if "url" in fields:
        node.bmc_url = bmc.url
    if "username" in fields:
        node.bmc_username = bmc.username
    if "password" in fields:
        node.bmc_password_enc = None if bmc.password is None else site.box.seal(bmc.password.get_secret_value())
    elif because:
        node.bmc_password_enc = None
    return because
