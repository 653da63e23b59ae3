"""BMC protocol code: one driver interface (`Bmc`, dgxie/bmc/base.py), one factory (`connect`).

Drivers: Redfish on the DMTF `redfish` library (sync, on `requests`: pooled logged-in clients for
actions, `dgxie/bmc/redfish.py`; basic-auth keep-alive reads for inventory,
`dgxie/bmc/redfish_inventory.py`) and IPMI through `ipmitool` (`dgxie/bmc/ipmi.py`). `scan`
(`dgxie/bmc/scan.py`) reads many endpoints' inventories concurrently through the same interface.
No database, no configuration here (ARCHITECTURE.md layering).
"""

from __future__ import annotations

from dgxie.bmc.base import Bmc, Endpoint, Options

__all__ = ["Bmc", "Endpoint", "Options"]  # the factory is dgxie.bmc.drivers.connect (imports the drivers)
