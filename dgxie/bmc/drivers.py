"""The one factory of BMC drivers: an endpoint's URL scheme picks the `Bmc` implementation.

| scheme | driver |
|---|---|
| `https://`, `http://` | `RedfishBmc` (`dgxie.bmc.redfish`) |
| `redfish+https://`, `redfish+http://` | `RedfishBmc`, the `redfish+` prefix dropped (Metal3 style) |
| `ipmi://HOST[:PORT]` | `IpmiBmc` (`dgxie.bmc.ipmi`): power and boot device only |

Any other scheme is `BmcUnsupported`, and so is plain `http://` (credentials in clear) unless
`Options.allow_http` (config `bmc.allow_insecure_http`). Nothing else in dgxie decides by scheme
or protocol: callers ask the driver and get `BmcUnsupported` for what its protocol cannot do.
"""

from __future__ import annotations

from dataclasses import replace

from dgxie.bmc.base import Bmc, BmcUnsupported, Endpoint, Options
from dgxie.bmc.ipmi import IpmiBmc
from dgxie.bmc.redfish import RedfishBmc


def connect(endpoint: Endpoint, opts: Options | None = None) -> Bmc:
    """A driver for `endpoint` (no I/O yet; a driver connects on its first call)."""
    scheme = endpoint.url.partition("://")[0]
    if scheme in ("http", "redfish+http") and not (opts or Options()).allow_http:
        raise BmcUnsupported(f"{endpoint.url}: plain http:// would send the BMC credentials in clear; "
                             "use https:// (or set bmc.allow_insecure_http: true for this site)")
    if scheme == "ipmi":
        return IpmiBmc(endpoint, opts)
    if scheme in ("redfish+http", "redfish+https"):
        return RedfishBmc(replace(endpoint, url=endpoint.url.removeprefix("redfish+")), opts)
    if scheme in ("http", "https"):
        return RedfishBmc(endpoint, opts)
    raise BmcUnsupported(f"{endpoint.url}: no BMC driver for this URL (https://, http:// or ipmi://HOST[:PORT])")
