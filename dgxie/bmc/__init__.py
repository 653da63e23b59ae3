"""BMC protocol code: Redfish (DMTF `redfish` library + httpx async reads) and IPMI (ipmitool)."""

from __future__ import annotations

from dgxie.bmc.base import Bmc, Endpoint, Options


def connect(endpoint: Endpoint, opts: Options | None = None) -> Bmc:
    """The right client for an endpoint's URL scheme: ipmi:// -> IPMI, http(s):// -> Redfish."""
    if endpoint.protocol == "ipmi":
        from dgxie.bmc.ipmi import IpmiBmc

        return IpmiBmc(endpoint, opts)
    from dgxie.bmc.redfish import RedfishBmc

    return RedfishBmc(endpoint, opts)
