"""/api/v1/firmware: scans, compliance (JSON, CSV, printable HTML) and changes over time."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from dgxie.api.auth import Operator, Viewer
from dgxie.api.deps import SessionDep, SiteDep
from dgxie.errors import Invalid
from dgxie.firmware import compliance, service
from dgxie.firmware.schemas import ScanResult
from dgxie.nodes import service as nodes
from dgxie.tokens import Principal

router = APIRouter(prefix="/firmware", tags=["firmware"])


class ScanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    nodes: list[str] = Field(default_factory=list, max_length=5000)
    all: bool = False


@router.post("/scan", response_model=list[ScanResult])
def scan(body: ScanIn, s: SessionDep, site: SiteDep, who: Principal = Operator) -> list[ScanResult]:
    """Scan the named nodes (and with `all` every node with a BMC) now; returns one result per node."""
    if not body.nodes and not body.all:
        raise Invalid("nodes: name nodes to scan, or set all: true")
    return service.scan(s, site, service.scan_targets(s, body.nodes, all_=body.all), actor=who.actor)


@router.get("/compliance")
def get_compliance(s: SessionDep, site: SiteDep, _: Principal = Viewer, node: str | None = None,
                   component: str | None = None, status: str | None = None,
                   format: str = Query("json", pattern="^(json|csv)$")) -> Any:
    data = compliance.rows(s, site, node=node, component=component, status=status)
    if format == "csv":
        return PlainTextResponse(compliance.to_csv(data), media_type="text/csv")
    return data


@router.get("/report.html", response_class=HTMLResponse)
def report_html(s: SessionDep, site: SiteDep, _: Principal = Viewer, node: str | None = None,
                status: str | None = None) -> HTMLResponse:
    return HTMLResponse(compliance.to_html(compliance.rows(s, site, node=node, status=status)))


@router.get("/changes")
def get_changes(s: SessionDep, _: Principal = Viewer, since: str = "7d",
                node: str | None = None) -> list[dict[str, Any]]:
    ns = [nodes.get_node(s, node)] if node else None
    return service.changes(s, service.parse_since(since), ns)
