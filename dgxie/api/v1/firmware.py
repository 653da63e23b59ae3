"""/api/v1/firmware: scans, compliance (JSON, CSV, printable HTML) and changes over time."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from dgxie.api.auth import Operator, Viewer
from dgxie.api.deps import SessionDep, SiteDep
from dgxie.api.limits import JsonRoute
from dgxie.api.openapi import example, missing
from dgxie.errors import Invalid
from dgxie.firmware import compliance, service
from dgxie.firmware.schemas import ScanResult
from dgxie.nodes import service as nodes
from dgxie.tokens import Principal

router = APIRouter(prefix="/firmware", tags=["firmware"], route_class=JsonRoute)
Status = Literal["compliant", "outdated", "ahead", "missing", "unknown"]  # firmware.service.STATUSES
ROW: dict[str, Any] = {"node": "gpu01", "component": "BMC", "installed": "1.2.3", "required": "1.3.0",
                       "status": "outdated", "platform": "dgx-h100", "endpoint": "bmc",
                       "scanned_at": "2026-11-30T08:00:00Z", "hint": ""}
CSV = "node,component,installed,required,status,platform,endpoint,scanned_at,hint\n" \
      "gpu01,BMC,1.2.3,1.3.0,outdated,dgx-h100,bmc,2026-11-30T08:00:00Z,\n"
SCAN = {"node": "gpu01", "ok": True, "components": 14, "model": "DGX H100", "error_kind": None, "error": "",
        "notes": [], "requests": 31}
CHANGE = {"node": "gpu01", "component": "BMC", "before": "1.2.3", "after": "1.3.0", "changed": "version",
          "scanned_at": "2026-11-30T08:00:00+00:00"}


class ScanIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"nodes": ["gpu01"]}, {"all": True}]})
    nodes: list[str] = Field(default_factory=list, max_length=5000)
    all: bool = False


@router.post("/scan", response_model=list[ScanResult], responses=example([SCAN]) | missing("a named node"))
def scan(body: ScanIn, s: SessionDep, site: SiteDep, who: Principal = Operator) -> list[ScanResult]:
    """Scan the named nodes (and with `all` every node with a BMC) now; returns one result per node."""
    if not body.nodes and not body.all:
        raise Invalid("nodes: name nodes to scan, or set all: true")
    return service.scan(s, site, service.scan_targets(s, body.nodes, all_=body.all), actor=who.actor)


@router.get("/compliance", responses={200: {"content": {"application/json": {"example": [ROW]},
                                                        "text/csv": {"example": CSV}}}})
def get_compliance(s: SessionDep, site: SiteDep, _: Principal = Viewer, node: str | None = None,
                   component: str | None = None, status: Status | None = None,
                   format: Literal["json", "csv"] = "json") -> Any:
    """Installed against required firmware, one row per node and component (JSON, or CSV with
    `format=csv`), filtered by node, component (an Id or a shell-style glob such as
    `HGX_FW_GPU_SXM_*`) and status."""
    data = compliance.rows(s, site, node=node, component=component, status=status)
    if format == "csv":
        return PlainTextResponse(compliance.to_csv(data), media_type="text/csv")
    return data


@router.get("/report.html", response_class=HTMLResponse,
            responses=example("<!doctype html><title>Firmware compliance</title>...", media="text/html"))
def report_html(s: SessionDep, site: SiteDep, _: Principal = Viewer, node: str | None = None,
                component: str | None = None, status: Status | None = None) -> HTMLResponse:
    """The compliance rows as a printable HTML page (filters as for /compliance)."""
    return HTMLResponse(compliance.to_html(compliance.rows(s, site, node=node, component=component, status=status)))


@router.get("/changes", responses=example([CHANGE]) | missing("the node"))
def get_changes(s: SessionDep, _: Principal = Viewer, since: str = Query("7d", max_length=64),
                node: str | None = None) -> list[dict[str, Any]]:
    """Components whose version changed between the last scan at `since` (`7d`, `12h`, `30m`, `2w`
    or an ISO 8601 time) and the latest one."""
    ns = [nodes.get_node(s, node)] if node else None
    return service.changes(s, service.parse_since(since), ns)
