"""Supervisor and technician pages: wallboard, reports (CDRs), logs."""

from __future__ import annotations

import time
import urllib.parse

from ..abc import EngineAPI
from ._api import parse_since, query_logs, run_report, run_staffing
from ._cdr import MASTER_CSV_COLUMNS, TIME_COLUMNS, format_time
from ._charts import calls_per_hour, stacked_bars
from ._html import Markup, esc, join, page, post_button, table, tag
from ._http import Request, Response
from ._logs import LEVELS, RingLogHandler
from ._pages_common import clock, member_summary, seconds


class OperationsPages:
    engine: EngineAPI
    logs: RingLogHandler

    async def wallboard(self, request: Request) -> Response:
        tiles = []
        today = await self._today_report(time.time())  # type: ignore[attr-defined]
        levels = today.get("queues") or {}
        for queue in self.engine.list_queues():
            level = (levels.get(str(queue.get("name"))) or {}).get("service_level")
            figures = [
                ("waiting", queue.get("waiting", 0)),
                ("longest wait", seconds(queue.get("longest_wait"))),
                ("agents", member_summary(queue.get("members"))),
                ("SL today", f"{level * 100:.0f}%" if isinstance(level, int | float) else ""),
                ("answered", queue.get("answered", "")),
                ("abandoned", queue.get("abandoned", "")),
            ]
            tiles.append(tag("section", tag("h2", queue.get("name")),
                             *(tag("div", tag("span", label, class_="label"), tag("span", value, class_="value"),
                                   class_="figure", data_figure=label) for label, value in figures),
                             class_="tile", data_queue=str(queue.get("name"))))  # fmt: skip
        body = join([
            tag("div", *tiles or [tag("p", "No queues configured.")], id="wallboard", class_="wallboard"),
            tag("section", tag("h2", "Agents"),
                self._agents_table(request.principal, controls=False, today=today)),  # type: ignore[attr-defined]
        ])  # fmt: skip
        return page("Wallboard", body, principal=request.principal, page_id="wallboard")

    async def reports(self, request: Request) -> Response:
        since_raw = request.query.get("since", "")
        since = parse_since(since_raw) if since_raw else None
        rows = await self.engine.cdr(since)
        shown = rows[-200:]
        columns = ["start", "src", "dst", "clid", "duration", "billsec", "disposition", "uniqueid"]
        now = time.time()
        recent = rows if since is not None and since <= now - 24 * 3600 else await self.engine.cdr(now - 24 * 3600)
        by_disposition: dict[str, int] = {}
        for row in rows:
            key = str(row.get("disposition", ""))
            by_disposition[key] = by_disposition.get(key, 0) + 1
        csv_link = "/api/v1/cdr?format=csv" + (f"&since={urllib.parse.quote(since_raw)}" if since_raw else "")
        body = join(
            [
                Markup('<form method="get" action="/reports" class="inline">'
                       f'<label>Since <input name="since" value="{esc(since_raw)}" placeholder="2026-11-01 or Unix time"></label>'
                       '<button type="submit">Show</button></form>'),
                tag("p", tag("a", "Download Master.csv", href=csv_link, download="Master.csv"),
                    f" ({len(rows)} records; columns in Asterisk Master.csv order: {', '.join(MASTER_CSV_COLUMNS)})"),
                calls_per_hour(recent, now=now),
                await self._queue_figures(since_raw),
                tag("h2", "Calls by disposition"),
                table(["disposition", "calls"], sorted(by_disposition.items()), id="dispositions"),
                tag("h2", f"Latest {len(shown)} records"),
                table(columns, ([format_time(r.get(c)) if c in TIME_COLUMNS else r.get(c, "") for c in columns]
                                for r in reversed(shown)), id="cdr"),
            ]
        )  # fmt: skip
        return page("Reports", body, principal=request.principal, page_id="reports")

    async def _queue_figures(self, since_raw: str) -> Markup:
        """Service level, ASA, AHT and abandonment per queue and half hour; agents (occupancy, measured
        ACW), channels and campaigns (contacts, first-contact resolution); the staffing forecast."""
        if getattr(self.engine, "report", None) is None:
            return Markup("")
        report = await run_report(self.engine, {"since": since_raw} if since_raw else {})
        rows = [
            [name, f.get("offered"), f.get("answered"), f.get("abandoned"), f.get("short_abandoned"),
             _percent(f.get("service_level")), seconds(f.get("asa")), seconds(f.get("aht")), _percent(f.get("abandon_rate"))]
            for name, f in sorted((report.get("queues") or {}).items())
        ]  # fmt: skip
        slots: dict[str, list[float]] = {}
        for interval in report.get("intervals") or []:
            label = _slot_label(interval.get("start"))
            answered, abandoned = slots.setdefault(label, [0.0, 0.0])
            slots[label] = [answered + float(interval.get("answered") or 0), abandoned + float(interval.get("abandoned") or 0)]
        labels = list(slots)
        parts: list[object] = [
            tag("h2", "Queues"),
            table(["queue", "offered", "answered", "abandoned", "short abandons", "service level", "ASA", "AHT",
                   "abandon rate"], rows, id="queue-figures"),
        ]  # fmt: skip
        if labels:
            parts.append(stacked_bars("Answered and abandoned per half hour (UTC)", labels,
                                      {"answered": [slots[k][0] for k in labels], "abandoned": [slots[k][1] for k in labels]}))  # fmt: skip
        csv_link = "/api/v1/reports?format=csv" + (f"&since={urllib.parse.quote(since_raw)}" if since_raw else "")
        parts += [
            tag("p", tag("a", "Download this report as CSV", href=csv_link, download="report.csv"),
                " (queues, agents, channels, campaigns and half hours; definitions in docs/api.md)"),
            tag("h2", "Agents"),
            table(["agent", "answered", "talk time", "ACW (measured)", "AHT", "occupancy"],
                  ([name, f.get("answered"), seconds(f.get("talk_time")), seconds(f.get("acw")), seconds(f.get("aht")),
                    _percent(f.get("occupancy"))] for name, f in sorted((report.get("agents") or {}).items())),
                  id="agent-figures"),
            tag("h2", "Channels"),
            table(["channel", "offered", "service level", "AHT", "contacts", "answered", "handle time", "first-contact resolution",
                   "FCR still open"],
                  ([name, f.get("offered", ""), _percent(f.get("service_level")), seconds(f.get("aht")), f.get("contacts", ""),
                    f.get("contacts_answered", ""), seconds(f.get("handle_time")), _percent(f.get("fcr")), f.get("fcr_pending", "")]
                   for name, f in sorted((report.get("channels") or {}).items())),
                  id="channel-figures"),
            tag("h2", "Campaigns"),
            table(["campaign", "contacts", "answered", "handle time", "first-contact resolution"],
                  ([name, f.get("contacts"), f.get("contacts_answered"), seconds(f.get("handle_time")), _percent(f.get("fcr"))]
                   for name, f in sorted((report.get("campaigns") or {}).items())),
                  id="campaign-figures"),
        ]  # fmt: skip
        if getattr(self.engine, "staffing", None) is not None:
            forecast = await run_staffing(self.engine, {})
            parts += [
                tag("h2", "Staffing forecast (Erlang C, 80 % in 20 s, last 28 days)"),
                table(["queue", "half hour", "calls", "AHT", "agents needed"],
                      ([f.get("queue"), f.get("slot"), f.get("calls"), seconds(f.get("aht")), f.get("agents")] for f in forecast),
                      id="staffing"),
            ]  # fmt: skip
        return join(parts)

    async def log_page(self, request: Request) -> Response:
        query = request.query
        records = query_logs(self.logs, query)
        level = (query.get("level") or "DEBUG").upper()
        options = "".join(
            f'<option value="{esc(name)}"{" selected" if name == level else ""}>{esc(name)}</option>' for name in LEVELS
        )
        body = join(
            [
                Markup('<form method="get" action="/logs" class="inline" id="log-filter">'
                       f'<label>Level <select name="level">{options}</select></label>'
                       f'<label>Component <input name="logger" value="{esc(query.get("logger", ""))}" placeholder="centralita.sip"></label>'
                       f'<label>Text <input name="q" value="{esc(query.get("q", ""))}"></label>'
                       '<button type="submit">Filter</button></form>'),
                table(["#", "time", "level", "component", "message"],
                      ([r.seq, clock(r.time), r.level, r.logger, r.message] for r in records), id="logs", class_="logs"),
            ]
        )  # fmt: skip
        return page("Logs", body, principal=request.principal, page_id="logs")

    async def devices(self, request: Request) -> Response:
        status = self.engine.status()
        channels = _mapping(status.get("channels"))
        devices = _mapping(status.get("devices"))
        csrf = request.principal.csrf
        # Per-contact and per-trunk rows have their own tables; the rest stays as key=value counters.
        channel_rows = [[name, _flatten(_without_contacts(stats))] for name, stats in sorted(channels.items(), key=_by_name)]
        registrations = _registration_rows(channels)
        trunks = _trunk_rows(channels)
        audio = {name: info for name, info in devices.items() if _mapping(info).get("driver") == "headset"}
        serial = {name: info for name, info in devices.items() if name not in audio}
        body = join(
            [
                tag("section", tag("h2", "SIP registrations"),
                    table(["user", "contact", "transport", "expires", "RTT", "reachable"], registrations, id="registrations")
                    if registrations else tag("p", "No phone is registered.", class_="muted")),
                tag("section", tag("h2", "SIP trunks"),
                    table(["trunk", "state", "last error", "RTT", "answers OPTIONS"], trunks, id="trunks")
                    if trunks else tag("p", "No [[sip.trunks]] configured.", class_="muted")),
                tag("section", tag("h2", "Serial devices"),
                    table(["device", "health", "model", "signal", "SIM", "last caller ID", "details",
                           "conformance (pauses the device)"],
                          (_serial_row(name, _mapping(info), csrf) for name, info in sorted(serial.items(), key=_by_name)),
                          id="devices") if serial
                    else tag("p", "No serial [[devices]] configured.", class_="muted")),
                tag("section", tag("h2", "Audio devices"),
                    table(["device", "health", "input level", "output level", "details", "conformance (pauses the device)"],
                          (_audio_row(name, _mapping(info), csrf) for name, info in sorted(audio.items(), key=_by_name)),
                          id="audio-devices") if audio
                    else tag("p", "No headset configured.", class_="muted")),
                tag("section", tag("h2", "Channels and lines"),
                    table(["channel", "state and counters"], channel_rows, id="channels") if channel_rows
                    else tag("p", "No channel plugin is running.", class_="muted")),
            ]
        )  # fmt: skip
        return page("Devices and lines", body, principal=request.principal, page_id="devices")


#: Rows per table on the devices page: a registrar with thousands of phones must not build a huge page.
DEVICES_PAGE_ROWS = 500


def _mapping(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _by_name(item: tuple) -> str:
    return str(item[0])


def _without_contacts(stats: object) -> object:
    if not isinstance(stats, dict) or not isinstance(stats.get("registrations"), dict):
        return stats
    return {**stats, "registrations": {k: v for k, v in stats["registrations"].items() if k != "contacts"}}


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _rtt(value: object) -> str:
    ms = _number(value)
    return "–" if ms is None else f"{ms:.1f} ms"


def _yes_no(value: object) -> str:
    return {True: "yes", False: "no"}.get(value, "–") if isinstance(value, bool) else "–"  # type: ignore[call-overload]


def _registration_rows(channels: dict) -> list[list[object]]:
    rows: list[list[object]] = []
    for _name, stats in sorted(channels.items(), key=_by_name):
        contacts = _mapping(_mapping(stats).get("registrations")).get("contacts")
        for c in contacts if isinstance(contacts, list) else ():
            if not isinstance(c, dict):
                continue
            expires = _number(c.get("expires_in"))
            rows.append([c.get("user", ""), c.get("contact", ""), c.get("transport", ""),
                         "–" if expires is None else f"{expires:.0f} s", _rtt(c.get("rtt_ms")), _yes_no(c.get("reachable"))])  # fmt: skip
    return rows[:DEVICES_PAGE_ROWS]


def _trunk_rows(channels: dict) -> list[list[object]]:
    rows: list[list[object]] = []
    for _name, stats in sorted(channels.items(), key=_by_name):
        for trunk, info in sorted(_mapping(_mapping(stats).get("trunks")).items(), key=_by_name):
            if isinstance(info, dict):
                rows.append([trunk, info.get("state", ""), info.get("last_error") or "–", _rtt(info.get("rtt_ms")),
                             _yes_no(info.get("reachable"))])  # fmt: skip
    return rows[:DEVICES_PAGE_ROWS]


def _test_button(name: object, csrf: str) -> Markup:
    return post_button(f"/devices/{urllib.parse.quote(str(name), safe='')}/test", "Test this device", csrf)


def _serial_row(name: object, info: dict, csrf: str) -> list[object]:
    shown = ("health", "model", "signal", "sim", "last_caller_id")
    signal = _number(info.get("signal"))
    # +CSQ's rssi 0..31 is -113..-51 dBm in 2 dB steps (3GPP TS 27.007 §8.5).
    signal_text = "–" if signal is None else f"{signal:.0f}/31 ({-113 + 2 * signal:.0f} dBm)" if 0 <= signal <= 31 else f"{signal:g}"
    caller = info.get("last_caller_id")
    if isinstance(caller, dict):
        caller = " ".join(str(caller.get(k) or "") for k in ("number", "name", "time")).strip()
    return [name, info.get("health", ""), info.get("model") or "–", signal_text, info.get("sim") or "–",
            caller or "–", _flatten({k: v for k, v in info.items() if k not in shown}), _test_button(name, csrf)]  # fmt: skip


def _audio_row(name: object, info: dict, csrf: str) -> list[object]:
    # Filled live by console.js from DeviceLevel events on the events WebSocket.
    def meter(direction: str) -> Markup:
        return Markup(f'<meter class="level" min="-60" max="0" low="-40" high="-6" optimum="-20" value="-60" '
                      f'data-device="{esc(name)}" data-direction="{direction}"></meter>'
                      f' <span class="level-text" data-device="{esc(name)}" data-direction="{direction}">–</span>')  # fmt: skip

    return [name, info.get("health", ""), meter("input"), meter("output"),
            _flatten({k: v for k, v in info.items() if k != "health"}), _test_button(name, csrf)]  # fmt: skip


def _flatten(value: object, prefix: str = "") -> str:
    """Nested statistics as ``key=value`` pairs (escaped later by the table)."""
    if isinstance(value, dict):
        parts = [_flatten(v, f"{prefix}{k}.") for k, v in value.items()]
        return " · ".join(p for p in parts if p)
    if isinstance(value, list | tuple):
        return f"{prefix.rstrip('.')}=[{', '.join(map(str, value[:20]))}{', ...' if len(value) > 20 else ''}]"
    return f"{prefix.rstrip('.')}={value}" if prefix else str(value)


def _percent(value: object) -> str:
    return f"{float(value) * 100:.1f} %" if isinstance(value, int | float) and not isinstance(value, bool) else "–"


def _slot_label(start: object) -> str:
    if isinstance(start, int | float) and not isinstance(start, bool) and start >= 86400:
        return clock(float(start))[11:16]
    return str(start)
