"""The devices page's "Test this device" button: the family's conformance checks (the same ones as
``centralita firmware-test`` and ``firmware-tests/``) against the configured port, through the
running driver.

The engine holds serial ports exclusively, so the console cannot open the port itself (and the
engine never imports ``hardware``). A driver that can be tested offers ``async self_test()``: it
pauses its session, runs the checks on its port, resumes, and returns one dict per check
(``name``, ``description``, ``passed``, ``skipped``, ``detail``, ``transcript``).
"""

from __future__ import annotations

import logging
from typing import Any

import trio

from ._html import join, page, tag
from ._http import HttpError, Request, Response, Router, json_response

log = logging.getLogger("centralita.console.devices")

#: Upper bound on one test run (a stuck device must not hold the request for ever).
TEST_TIMEOUT = 180.0


class DeviceTestPages:
    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def mount(self, router: Router) -> None:
        router.add("POST", "/api/v1/devices/{name}/test", self.api_test, role="admin")
        router.add("POST", "/devices/{name}/test", self.test_page, role="admin", page=True)

    async def run(self, name: str, user: str) -> dict[str, Any]:
        directory = getattr(self.engine, "devices", None)
        device = directory.get(name) if directory is not None and len(name) <= 100 else None
        if device is None:
            raise HttpError(404, "no such device")
        self_test = getattr(device, "self_test", None)
        if self_test is None:
            raise HttpError(409, f"the driver of {name} cannot be tested while the engine runs")
        log.warning("device %s: conformance test started by %s (its session is paused)", name, user)
        try:
            with trio.fail_after(TEST_TIMEOUT):
                results = await self_test()
        except trio.TooSlowError:
            raise HttpError(504, f"the test of {name} did not finish in {TEST_TIMEOUT:.0f} s") from None
        passed = all(r.get("passed") for r in results)
        log.info("device %s: conformance test %s", name, "passed" if passed else "FAILED")
        return {"device": name, "driver": getattr(getattr(device, "spec", None), "driver", ""), "passed": passed,
                "results": results}

    async def api_test(self, request: Request) -> Response:
        return json_response(await self.run(request.path_params["name"], request.principal.name))

    async def test_page(self, request: Request) -> Response:
        name = request.path_params["name"]
        report = await self.run(name, request.principal.name)
        items = []
        for result in report["results"]:
            verdict = "skipped" if result.get("skipped") else ("PASS" if result.get("passed") else "FAIL")
            transcript = result.get("transcript") or []
            items.append(tag(
                "li",
                tag("strong", verdict, class_=f"verdict {verdict.lower()}"), " ", tag("code", result.get("name")), ": ",
                result.get("detail"),
                tag("pre", "\n".join(f"{'host  >' if d == '>' else 'device<'} {t}" for d, t in transcript[-8:]))
                if transcript and not result.get("passed") else "",
                data_verdict=verdict,
            ))  # fmt: skip
        summary = "All checks passed." if report["passed"] else "Some checks failed: see the device's answers below."
        body = join([
            tag("p", f"{report['driver']} on {name}: {summary}", id="device-test-summary",
                class_="notice" if report["passed"] else "error"),
            tag("ol", *items, id="device-test-report"),
            tag("p", tag("a", "Back to devices", href="/devices")),
        ])  # fmt: skip
        return page(f"Test of {name}", body, principal=request.principal, page_id="device-test")
