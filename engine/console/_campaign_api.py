"""``/api/v1/campaigns...``: the outbound dialer as supervisors and agents drive it.

Supervisors list campaigns with their state and statistics, pause and resume them (until the next
restart: the configuration says whether a campaign runs), upload leads (CSV, the importer of
``centralita import-leads``, bad rows reported by line) and read dispositions. Agents answer a preview
(start or skip the lead they were shown); only the agent the lead is on show to can.

Statistics come from the audit log (``dialer_audit``), so they survive restarts and agree with what an
auditor recomputes; the abandonment rate is given under every registered compliance policy.
"""

from __future__ import annotations

import io
import time
from collections import Counter
from typing import Any

import trio

from ..dialing import AbandonTally
from ..dialing.leads import LeadImportError, import_leads, parse_mapping
from ._auth import Principal
from ._http import HttpError, Request, Response, Router, json_response

#: a lead upload larger than this is refused (413) before it is read whole; bigger lists go through
#: ``centralita import-leads`` or several uploads
MAX_LEAD_UPLOAD = 8 * 1024 * 1024
#: at most this many rows per upload (the body limit keeps it far below the importer's own cap)
MAX_LEAD_ROWS = 200_000
PREVIEW_ACTIONS = frozenset({"start", "skip"})


class CampaignApi:
    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def mount(self, router: Router) -> None:
        add = router.add
        add("GET", "/api/v1/campaigns", self.list_campaigns, role="supervisor")
        add("GET", "/api/v1/campaigns/{name}", self.one_campaign, role="supervisor")
        add("POST", "/api/v1/campaigns/{name}/pause", self.pause, role="supervisor")
        add("POST", "/api/v1/campaigns/{name}/resume", self.resume, role="supervisor")
        add("POST", "/api/v1/campaigns/{name}/leads", self.upload_leads, role="supervisor")
        add("GET", "/api/v1/campaigns/{name}/dispositions", self.dispositions, role="supervisor")
        add("GET", "/api/v1/previews", self.my_previews, role="agent")
        add("POST", "/api/v1/campaigns/{name}/preview/{lead}/{action}", self.preview, role="agent")

    # ------------------------------------------------------------------------------- helpers

    def _settings(self, name: str) -> Any:
        for settings in getattr(self.engine, "campaigns", None) or []:
            if settings.name == name:
                return settings
        raise HttpError(404, f"no campaign named {name[:64]!r}")

    def _running(self, name: str) -> Any:
        self._settings(name)
        dialer = getattr(self.engine, "dialer", None)
        if dialer is None or name not in dialer.campaigns:
            raise HttpError(409, f"campaign {name[:64]!r} is not running (enabled = false?)")
        return dialer.campaigns[name]

    async def _counts(self, name: str, since: float | None = None) -> Counter[str]:
        store = self.engine.store
        sql = "SELECT kind, count(*) AS n FROM dialer_audit WHERE campaign = ?"
        args: tuple[Any, ...] = (name,)
        if since is not None:
            sql += " AND time >= ?"
            args += (since,)
        rows = await store.fetchall(sql + " GROUP BY kind", args)
        return Counter({row["kind"]: int(row["n"]) for row in rows})

    async def _summary(self, settings: Any) -> dict[str, Any]:
        dialer = getattr(self.engine, "dialer", None)
        campaign = dialer.campaigns.get(settings.name) if dialer is not None else None
        totals = await self._counts(settings.name)
        now = time.time()
        misclassified = campaign.dialer.machine_misclassified() if campaign is not None else 0.0
        rates: dict[str, Any] = {}
        for policy_name, policy in self.engine.compliance_policies.items():
            counts = await self._counts(settings.name, now - policy.window)
            tally = AbandonTally(counts["answer-live"], counts["abandon"], counts["answer-machine"], misclassified)
            rates[policy_name] = {"rate": policy.rate(tally), "max_rate": policy.max_rate,
                                  "window_days": policy.window / 86400.0, "live_answers": tally.live_answers,
                                  "abandoned": tally.abandoned, "applies": policy_name == settings.compliance}
        if campaign is None:
            state = "disabled" if not settings.enabled else "stopped"
        else:
            state = "paused" if campaign.dialer.paused else "running"
        out: dict[str, Any] = {
            "name": settings.name, "state": state, "mode": settings.mode, "compliance": settings.compliance,
            "dispositions": list(settings.dispositions),
            "dialed": totals["dial"], "answered_live": totals["answer-live"],
            "answered_machine": totals["answer-machine"], "connected": totals["connect"],
            "abandoned": totals["abandon"], "no_answer": totals["no-answer"], "busy": totals["busy"],
            "refused": totals["refused"], "abandon_rate": rates,
        }
        if campaign is not None:
            out.update({
                "mode": campaign.dialer.dialer.mode,  # may differ: predictive downgraded on unsupervised lines
                "hopper": len(campaign.dialer.hopper), "live_calls": len(campaign.calls),
                "ready_agents": sorted(campaign.ready_agents),
                # detector said / disposition said, e.g. "machine/human": people the detector classed as machines
                "amd": {f"{said}/{truth}": n for (said, truth), n in sorted(campaign.dialer.amd_confusion.items())},
                "amd_detector": settings.amd_detector,
            })
        return out

    # ------------------------------------------------------------------------------- supervisor

    async def list_campaigns(self, request: Request) -> Response:
        return json_response([await self._summary(s) for s in getattr(self.engine, "campaigns", None) or []])

    async def one_campaign(self, request: Request) -> Response:
        return json_response(await self._summary(self._settings(request.path_params["name"])))

    async def pause(self, request: Request) -> Response:
        return await self._pause(request, True)

    async def resume(self, request: Request) -> Response:
        return await self._pause(request, False)

    async def _pause(self, request: Request, paused: bool) -> Response:
        name = request.path_params["name"]
        self._running(name)
        self.engine.dialer.set_paused(name, paused, by=request.principal.name)
        return json_response(await self._summary(self._settings(name)))

    async def upload_leads(self, request: Request) -> Response:
        """The body is the CSV file itself. ``?region=ES`` for numbers without a country code (default:
        the campaign's), ``?map=Mobile=phone,Name=name`` maps columns to fields as ``--map`` does."""
        name = request.path_params["name"]
        settings = self._settings(name)
        region = (request.query.get("region") or settings.region).upper()
        if not (len(region) == 2 and region.isalpha() and region.isascii()):
            raise HttpError(400, f"'region' must be a two-letter country code, got {region[:16]!r}")
        raw_map = request.query.get("map", "")
        try:
            mapping = parse_mapping([p for p in raw_map[:4096].split(",") if p]) if raw_map else None
        except LeadImportError as exc:
            raise HttpError(400, str(exc).replace("--map", "'map'")) from None
        data = await request.body(limit=MAX_LEAD_UPLOAD)
        if not data.strip():
            raise HttpError(400, "the body must be the CSV file (a header row, then one lead per row)")
        from .._dialer import StoreLeadSink  # the sink `centralita import-leads` writes through

        store = self.engine.store
        existing = {r["number"] for r in await store.fetchall(
            "SELECT number FROM dialer_numbers WHERE campaign = ?", (name,))}
        sink = StoreLeadSink(name, existing)

        def run() -> Any:
            return import_leads(io.BytesIO(data), sink, mapping=mapping, region=region, max_rows=MAX_LEAD_ROWS)

        try:
            report = await trio.to_thread.run_sync(run)  # a few MB of CSV must not stall the calls
        except LeadImportError as exc:
            raise HttpError(400, str(exc)) from None
        if sink.leads:
            await store.write_many(sink.statements(time.time()))
            dialer = getattr(self.engine, "dialer", None)
            if dialer is not None and name in dialer.campaigns:
                dialer.leads_added(name)
        return json_response({**report.as_json(), "problems_not_listed": report.problems_not_kept},
                             201 if sink.leads else 200)

    async def dispositions(self, request: Request) -> Response:
        name = request.path_params["name"]
        settings = self._settings(name)
        rows = await self.engine.store.fetchall(
            "SELECT json_extract(record, '$.detail.disposition') AS code, count(*) AS n FROM dialer_audit "
            "WHERE campaign = ? AND kind = 'disposition' GROUP BY code ORDER BY code", (name,))
        return json_response({"campaign": name, "codes": list(settings.dispositions),
                              "counts": {str(r["code"]): int(r["n"]) for r in rows}})

    # ------------------------------------------------------------------------------- agent

    async def my_previews(self, request: Request) -> Response:
        dialer = getattr(self.engine, "dialer", None)
        return json_response(dialer.previews_for(request.principal.name) if dialer is not None else [])

    async def preview(self, request: Request) -> Response:
        principal: Principal = request.principal
        action = request.path_params["action"]
        if action not in PREVIEW_ACTIONS:
            raise HttpError(404, f"unknown preview action {action[:32]!r}; start or skip")
        name, lead = request.path_params["name"], request.path_params["lead"]
        self._running(name)
        # always the caller's own preview: a supervisor cannot start a call for somebody else's phone
        self.engine.dialer.answer_preview(name, principal.name, lead, start=action == "start")
        return json_response({"campaign": name, "lead": lead, "agent": principal.name,
                              "action": "dialing" if action == "start" else "skipped"})


def previews_of(engine: Any, agent: str) -> list[dict[str, Any]]:
    """For the desk page: the leads on show to ``agent``."""
    dialer = getattr(engine, "dialer", None)
    return dialer.previews_for(agent) if dialer is not None else []
