"""Where responses go and what a receiver writes into the top Via (RFC 3261 §18.2, RFC 3581).

Pure functions for the transport shell: stamp ``received``/``rport`` on requests as they arrive, and find
the address a response must be sent to.
"""

from __future__ import annotations

import ipaddress

from ._message import Request, Response

__all__ = ["stamp_received", "response_destination"]

DEFAULT_PORTS = {"UDP": 5060, "TCP": 5060, "SCTP": 5060, "TLS": 5061, "WS": 80, "WSS": 443}


def _same_host(sent_by_host: str, source_ip: str) -> bool:
    if sent_by_host == source_ip:
        return True  # the usual case, without parsing two addresses per request
    try:
        return ipaddress.ip_address(sent_by_host.strip("[]")) == ipaddress.ip_address(source_ip)
    except ValueError:
        return False  # a host name never equals the packet's source address


def stamp_received(request: Request, source_ip: str, source_port: int) -> None:
    """Record where a request really came from in its top Via (server side, on receipt).

    Adds ``received`` when the sent-by host differs from the source address (RFC 3261 §18.2.1) and fills
    an empty ``rport`` with the source port, adding ``received`` too (RFC 3581 §4).
    """
    top = request.top_via
    if top is None:
        return
    params: dict[str, str | None] = {}
    if top.rport is True:
        params["rport"] = str(source_port)
        params["received"] = source_ip
    elif not _same_host(top.host, source_ip):
        params["received"] = source_ip
    if not params:
        return
    request.headers.replace_first("Via", str(top.with_params(**params)))


def response_destination(response: Response | Request, *, reliable: bool = False) -> tuple[str, int] | None:
    """The (host, port) an unreliable-transport response goes to (RFC 3261 §18.2.2, RFC 3581 §4).

    Given a response, or the request it answers after :func:`stamp_received` (same top Via).

    ``received`` (else the sent-by host) with ``rport`` (else the sent-by port, else the transport's default
    port). ``maddr`` is not honoured (multicast responses are not supported). Over a reliable transport the
    response goes back on the connection the request came in on; this is the fallback if it is gone.
    """
    top = response.top_via
    if top is None:
        return None
    host = top.received or top.host
    rport = top.rport
    if isinstance(rport, int) and not isinstance(rport, bool) and not reliable:
        port = rport
    else:
        port = top.port or DEFAULT_PORTS.get(top.transport, 5060)
    return host.strip("[]"), port
