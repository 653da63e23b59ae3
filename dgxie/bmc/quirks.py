"""Vendor quirks, in one place, as pure functions over Redfish JSON (no I/O).

Each function names the quirk it absorbs; the Redfish and scan clients call these and record a
note in the `Inventory` when one fired, so operators can see which BMCs needed help.
DSP0266 (Redfish specification) and DSP0268 (schema guide) are the references.
"""

from __future__ import annotations

from typing import Any

from dgxie.bmc.base import BmcProtocolError, Component

# What each dgxie power action means in Redfish ResetType terms, best first (DSP0268 ResetType).
RESET_PREFERENCES: dict[str, tuple[tuple[str, ...], ...]] = {
    "on": (("On",), ("ForceOn",), ("PushPowerButton",)),
    "off": (("ForceOff",), ("GracefulShutdown",), ("PushPowerButton",)),
    # A cycle: PowerCycle where offered, else ForceRestart, else ForceOff followed by On.
    "cycle": (("PowerCycle",), ("ForceRestart",), ("GracefulRestart",), ("ForceOff", "On")),
}

POWER_STATES = {"On": "on", "Off": "off", "PoweringOn": "on", "PoweringOff": "off", "Paused": "on"}


def members(collection: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    """The Members of a collection, and a note when Members@odata.count disagrees (trust Members).

    Seen in DMTF's public-rackmount1 FirmwareInventory: count 2, three members listed.
    """
    listed = collection.get("Members")
    if not isinstance(listed, list):
        raise BmcProtocolError(f"{collection.get('@odata.id', 'collection')}: no Members list")
    items = [m for m in listed if isinstance(m, dict)]
    count = collection.get("Members@odata.count")
    note = None
    if isinstance(count, int) and count != len(items):
        note = (f"{collection.get('@odata.id', 'collection')}: Members@odata.count is {count} but "
                f"{len(items)} members are listed; trusting Members")
    return items, note


def member_uris(collection: dict[str, Any]) -> tuple[list[str], str | None]:
    items, note = members(collection)
    uris = [str(m["@odata.id"]) for m in items if isinstance(m.get("@odata.id"), str)]
    return uris, note


def expand_supported(root: dict[str, Any]) -> bool:
    """`$expand=.($levels=1)` is worth trying when the service root advertises ExpandQuery (DSP0266 7.3)."""
    feats = root.get("ProtocolFeaturesSupported") or {}
    eq = feats.get("ExpandQuery") if isinstance(feats, dict) else None
    return isinstance(eq, dict) and bool(eq.get("ExpandAll") or eq.get("NoLinks") or eq.get("Levels"))


def is_expanded(collection: dict[str, Any]) -> bool:
    """Did the BMC actually expand the members (some ignore `$expand` and return bare links)?"""
    items = collection.get("Members")
    if not isinstance(items, list) or not items:
        return False
    return all(isinstance(m, dict) and ("Id" in m or "Version" in m) for m in items)


def component(doc: dict[str, Any], endpoint: str = "bmc") -> Component:
    """A SoftwareInventory resource as a `Component`; an empty Version is kept as None."""
    cid = doc.get("Id") or str(doc.get("@odata.id", "")).rstrip("/").rsplit("/", 1)[-1]
    if not cid:
        raise BmcProtocolError("a FirmwareInventory member has neither Id nor @odata.id")
    version = doc.get("Version")
    version = str(version).strip() if version not in (None, "") else None
    upd = doc.get("Updateable")
    return Component(id=str(cid), version=version or None, name=str(doc.get("Name") or ""),
                     updateable=upd if isinstance(upd, bool) else None, endpoint=endpoint)


def allowed_resets(system: dict[str, Any], action_info: dict[str, Any] | None = None) -> list[str] | None:
    """ResetType values the system allows: inline `@Redfish.AllowableValues` or its ActionInfo.

    None means the BMC does not say (then dgxie tries its preferences in order).
    """
    action = (system.get("Actions") or {}).get("#ComputerSystem.Reset") or {}
    inline = action.get("ResetType@Redfish.AllowableValues")
    if isinstance(inline, list):
        return [str(v) for v in inline]
    for param in (action_info or {}).get("Parameters", []) or []:
        if isinstance(param, dict) and param.get("Name") == "ResetType" and isinstance(
                param.get("AllowableValues"), list):
            return [str(v) for v in param["AllowableValues"]]
    return None


def reset_plan(action: str, allowed: list[str] | None) -> tuple[str, ...]:
    """The ResetType sequence for `action` given what the BMC allows (a quirk when not the first).

    >>> reset_plan("cycle", ["ForceOff", "ForceRestart", "GracefulShutdown", "On"])
    ('ForceRestart',)
    >>> reset_plan("cycle", ["On", "ForceOff"])
    ('ForceOff', 'On')
    """
    prefs = RESET_PREFERENCES[action]
    if allowed is None:
        return prefs[0]
    for plan in prefs:
        if all(step in allowed for step in plan):
            return plan
    raise BmcProtocolError(f"no ResetType for {action!r} among the allowed {allowed}")


def power_state(system: dict[str, Any]) -> str:
    return POWER_STATES.get(str(system.get("PowerState")), "unknown")


def already_in_state(status: int, body: Any) -> bool:
    """A 400/409 that may mean "already in that state" (e.g. On when On): re-read to confirm.

    Vendors differ (HTTP 409 Conflict, 400 with Base.x.ActionNotSupported or an OEM message), so
    this only says "worth re-reading"; the caller decides by the state it reads back.
    """
    return status in (400, 409)


def if_match(doc: dict[str, Any], header_etag: str | None) -> dict[str, str]:
    """If-Match for a PATCH: the ETag header, else the resource's @odata.etag (DSP0266 13.2.3)."""
    etag = header_etag or doc.get("@odata.etag")
    return {"If-Match": str(etag)} if etag else {}


def manager_component(manager: dict[str, Any], component_ids: set[str]) -> str | None:
    """The inventory entry of a Manager's own firmware: Links.ActiveSoftwareImage, else by name.

    The capture's HGX manager links HGX_FW_BMC_0; the AMI host manager `BMC` links nothing, and
    its firmware is HostBMC_0.
    """
    link = ((manager.get("Links") or {}).get("ActiveSoftwareImage") or {}).get("@odata.id")
    if isinstance(link, str):
        return link.rstrip("/").rsplit("/", 1)[-1]
    mid = str(manager.get("Id") or "")
    for cid in (f"Host{mid}_0", f"{mid}_0", mid):
        if cid in component_ids:
            return cid
    return None


def manager_notes(managers: dict[str, tuple[str | None, str | None]], components: list[Component]) -> list[str]:
    """Notes where a Manager's FirmwareVersion differs from its inventory entry (inventory wins).

    `managers` maps manager id to (FirmwareVersion, inventory component id). The capture's AMI
    host BMC reports FirmwareVersion 23.11.20 while HostBMC_0 says 23.11.21.
    """
    by_id = {c.id: c.version for c in components}
    notes = []
    for mid, (version, cid) in sorted(managers.items()):
        inv = by_id.get(cid) if cid else None
        if inv is not None and version is not None and inv != version:
            notes.append(f"Manager {mid} FirmwareVersion {version} differs from inventory {cid} {inv}; "
                         "inventory wins")
    return notes


def task_state(task: dict[str, Any]) -> tuple[str, int | None, tuple[str, ...]]:
    """(TaskState, PercentComplete, messages) of a DMTF Task resource."""
    state = str(task.get("TaskState") or "Unknown")
    pct = task.get("PercentComplete")
    msgs = tuple(str(m.get("Message", "")) for m in task.get("Messages") or [] if isinstance(m, dict))
    return state, pct if isinstance(pct, int) else None, msgs


TASK_DONE = {"Completed", "Exception", "Killed", "Cancelled", "Interrupted"}
