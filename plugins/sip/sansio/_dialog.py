"""Dialogs (RFC 3261 §12): the state two user agents share for a call, and the requests inside it.

A :class:`Dialog` is made from the request and response that establish it, on the UAC side
(:meth:`Dialog.from_uac`) or the UAS side (:meth:`Dialog.from_uas`). It builds in-dialog requests (BYE,
re-INVITE, ACK for a 2xx, INFO, REFER...) with the right Request-URI, Route set, tags and CSeq, and checks
incoming ones (CSeq order, RFC 3261 §12.2.2).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable

from ._address import NameAddr
from ._errors import SipLocalError, SipParseError
from ._headers import Headers
from ._message import Request, Response
from ._timers import new_branch
from ._uri import SipUri, Uri

__all__ = [
    "Dialog",
    "DialogState",
    "dialog_id_for_incoming_request",
    "dialog_id_for_response",
    "new_request",
]

# Requests that refresh the remote target from their Contact (RFC 3261 §12.2, RFC 3515, RFC 3311).
TARGET_REFRESH = frozenset({"INVITE", "UPDATE", "SUBSCRIBE", "NOTIFY", "REFER"})


class DialogState(enum.Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


# (state, event) -> state; other combinations leave the state unchanged.
_TRANSITIONS = {
    (DialogState.EARLY, "2xx"): DialogState.CONFIRMED,
    (DialogState.EARLY, "failure"): DialogState.TERMINATED,
    (DialogState.EARLY, "bye"): DialogState.TERMINATED,
    (DialogState.CONFIRMED, "bye"): DialogState.TERMINATED,
}

DialogId = tuple[str, str, str]


def dialog_id_for_incoming_request(request: Request) -> DialogId | None:
    """(Call-ID, our tag, their tag) of a request we receive: our tag is in To, theirs in From."""
    try:
        to_tag, from_tag = request.to.tag, request.from_.tag
    except SipParseError:
        return None
    if not to_tag or request.call_id is None:
        return None
    return (request.call_id, to_tag, from_tag or "")


def dialog_id_for_response(response: Response) -> DialogId | None:
    """(Call-ID, our tag, their tag) of a response to our request: our tag is in From, theirs in To."""
    try:
        to_tag, from_tag = response.to.tag, response.from_.tag
    except SipParseError:
        return None
    if response.call_id is None or not from_tag:
        return None
    return (response.call_id, from_tag, to_tag or "")


def _contact_uri(message: Request | Response) -> Uri | None:
    try:
        contacts = message.contact
    except SipParseError:
        return None
    return contacts[0].uri if contacts and not contacts[0].is_wildcard else None


def new_request(
    method: str,
    uri: Uri | str,
    *,
    from_: NameAddr | str,
    to: NameAddr | str,
    via: str,
    call_id: str | None = None,
    cseq: int = 1,
    contact: str | None = None,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    content_type: str | None = None,
) -> Request:
    """An out-of-dialog request (INVITE, REGISTER, OPTIONS, MESSAGE...) with every mandatory header field.

    ``from_`` gets a fresh tag if it has none; ``via`` is our transport and sent-by (``"UDP 192.0.2.1:5060"``)
    and gets a fresh branch and ``rport``.
    """
    from ._timers import new_call_id, new_tag

    sender = NameAddr.parse(from_) if isinstance(from_, str) else from_
    if sender.tag is None:
        sender = sender.with_tag(new_tag())
    h = Headers()
    transport, _, sent_by = via.strip().partition(" ")
    h.add("Via", f"SIP/2.0/{transport.upper()} {sent_by};branch={new_branch()};rport")
    h.add("Max-Forwards", "70")
    h.add("From", str(sender))
    h.add("To", str(to))
    h.add("Call-ID", call_id or new_call_id(sent_by.rsplit(":", 1)[0] or "centralita"))
    h.add("CSeq", f"{cseq} {method}")
    if contact:
        h.add("Contact", contact)
    if body and content_type:
        h.add("Content-Type", content_type)
    for name, value in headers:
        h.add(name, value)
    return Request(method, uri, h, body)


class Dialog:
    """One dialog, seen from our side."""

    def __init__(
        self,
        *,
        call_id: str,
        local_tag: str,
        remote_tag: str,
        local_party: NameAddr,
        remote_party: NameAddr,
        remote_target: Uri,
        route_set: list[str],
        local_cseq: int,
        remote_cseq: int | None,
        local_contact: str | None,
        is_uac: bool,
        state: DialogState = DialogState.CONFIRMED,
    ) -> None:
        self.call_id = call_id
        self.local_tag = local_tag
        self.remote_tag = remote_tag
        self.local_party = local_party.replace(params={k: v for k, v in local_party.params.items() if k != "tag"})
        self.remote_party = remote_party.replace(
            params={k: v for k, v in remote_party.params.items() if k != "tag"}
        )
        self.remote_target = remote_target
        self.route_set = route_set
        self.local_cseq = local_cseq
        self.remote_cseq = remote_cseq
        self.local_contact = local_contact
        self.is_uac = is_uac
        self.state = state
        self.invite_cseq: int | None = None  # CSeq of the last INVITE we sent (for its ACK)

    @property
    def id(self) -> DialogId:
        return (self.call_id, self.local_tag, self.remote_tag)

    # -- creation ----------------------------------------------------------------------------------
    @classmethod
    def from_uac(cls, request: Request, response: Response, *, local_contact: str | None = None) -> Dialog:
        """The dialog our request (INVITE, SUBSCRIBE...) created, from a 1xx-with-tag or 2xx response."""
        to = response.to
        if not to.tag:
            raise SipParseError("response creating a dialog has no To tag", None)
        from_ = request.from_
        if not from_.tag:
            raise SipLocalError("our request has no From tag")
        routes = [v for v in reversed(response.headers.get_all("Record-Route"))]
        target = _contact_uri(response) or request.uri
        number, _ = request.cseq
        state = DialogState.CONFIRMED if 200 <= response.status < 300 else DialogState.EARLY
        dialog = cls(
            call_id=request.call_id or "", local_tag=from_.tag, remote_tag=to.tag, local_party=from_,
            remote_party=to, remote_target=target, route_set=routes, local_cseq=number, remote_cseq=None,
            local_contact=local_contact or request.headers.get("Contact"), is_uac=True, state=state,
        )
        if request.method == "INVITE":
            dialog.invite_cseq = number
        return dialog

    @classmethod
    def from_uas(cls, request: Request, local_tag: str, *, local_contact: str | None = None,
                 early: bool = False) -> Dialog:
        """The dialog we create by answering ``request`` with ``local_tag`` in our To."""
        from_ = request.from_
        target = _contact_uri(request)
        if target is None:
            raise SipParseError("request creating a dialog has no usable Contact", 400)
        number, _ = request.cseq
        return cls(
            call_id=request.call_id or "", local_tag=local_tag, remote_tag=from_.tag or "",
            local_party=request.to, remote_party=from_, remote_target=target,
            route_set=list(request.headers.get_all("Record-Route")), local_cseq=0, remote_cseq=number,
            local_contact=local_contact, is_uac=False,
            state=DialogState.EARLY if early else DialogState.CONFIRMED,
        )

    # -- requests we send ---------------------------------------------------------------------------
    def create_request(
        self,
        method: str,
        *,
        via: str,
        body: bytes = b"",
        content_type: str | None = None,
        headers: Iterable[tuple[str, str]] = (),
        cseq: int | None = None,
    ) -> Request:
        """An in-dialog request. ``via`` is our sent-by with transport, e.g. ``"UDP 192.0.2.1:5060"``.

        CSeq increases for each request except ACK and CANCEL (RFC 3261 §12.2.1.1).
        """
        if self.state is DialogState.TERMINATED and method not in ("ACK",):
            raise SipLocalError(f"cannot send {method} in a terminated dialog")
        if cseq is None:
            if method in ("ACK", "CANCEL"):
                cseq = self.invite_cseq if self.invite_cseq is not None else self.local_cseq
            else:
                self.local_cseq += 1
                cseq = self.local_cseq
        if method == "INVITE":
            self.invite_cseq = cseq
        uri: Uri = self.remote_target
        routes = list(self.route_set)
        if routes:
            first = NameAddr.parse(routes[0]).uri
            if not (isinstance(first, SipUri) and "lr" in first.params):
                # Strict router (RFC 2543): it goes in the Request-URI, the target goes last in Route.
                uri = first
                routes = routes[1:] + [f"<{self.remote_target}>"]
        h = Headers()
        transport, _, sent_by = via.strip().partition(" ")
        h.add("Via", f"SIP/2.0/{transport.upper()} {sent_by};branch={new_branch()};rport")
        h.add("Max-Forwards", "70")
        for route in routes:
            h.add("Route", route)
        h.add("From", str(self.local_party.with_tag(self.local_tag)))
        h.add("To", str(self.remote_party.with_tag(self.remote_tag) if self.remote_tag else self.remote_party))
        h.add("Call-ID", self.call_id)
        h.add("CSeq", f"{cseq} {method}")
        if method in TARGET_REFRESH and self.local_contact:
            h.add("Contact", self.local_contact)
        if body and content_type:
            h.add("Content-Type", content_type)
        for name, value in headers:
            h.add(name, value)
        return Request(method, uri, h, body)

    def create_ack(self, *, via: str, body: bytes = b"", content_type: str | None = None) -> Request:
        """The ACK for a 2xx to our last INVITE (same CSeq number, its own branch; RFC 3261 §13.2.2.4)."""
        if self.invite_cseq is None:
            raise SipLocalError("no INVITE to acknowledge in this dialog")
        return self.create_request("ACK", via=via, body=body, content_type=content_type, cseq=self.invite_cseq)

    def create_bye(self, *, via: str) -> Request:
        return self.create_request("BYE", via=via)

    def create_reinvite(self, sdp: bytes, *, via: str) -> Request:
        return self.create_request("INVITE", via=via, body=sdp, content_type="application/sdp")

    def create_info_dtmf(self, digit: str, duration_ms: int = 160, *, via: str) -> Request:
        body = f"Signal={digit}\r\nDuration={duration_ms}\r\n".encode()
        return self.create_request("INFO", via=via, body=body, content_type="application/dtmf-relay")

    def create_refer(self, target: str, *, via: str, referred_by: str | None = None) -> Request:
        headers = [("Refer-To", target)]
        if referred_by:
            headers.append(("Referred-By", referred_by))
        return self.create_request("REFER", via=via, headers=headers)

    def create_refer_notify(self, status: int, reason: str | None = None, *, via: str,
                            final: bool | None = None) -> Request:
        """The NOTIFY reporting a REFER's progress (RFC 3515 §2.4.4): a ``message/sipfrag`` status line.

        ``final`` (default: ``status >= 200``) ends the implicit subscription.
        """
        from ._message import REASON_PHRASES

        final = status >= 200 if final is None else final
        phrase = REASON_PHRASES.get(status, "") if reason is None else reason
        state = "terminated;reason=noresource" if final else "active;expires=60"
        return self.create_request(
            "NOTIFY", via=via, body=f"SIP/2.0 {status} {phrase}\r\n".encode(),
            content_type="message/sipfrag;version=2.0",
            headers=[("Event", "refer"), ("Subscription-State", state)],
        )

    # -- messages we receive ------------------------------------------------------------------------
    def receive_request(self, request: Request) -> int | None:
        """Check and absorb an in-dialog request; returns an error status to answer with, or ``None``."""
        try:
            number, _ = request.cseq
        except SipParseError:
            return 400
        if request.method not in ("ACK", "CANCEL"):
            if self.remote_cseq is not None and number <= self.remote_cseq:
                return 500  # RFC 3261 §12.2.2: out of order (a retransmission never reaches us here)
            self.remote_cseq = number
        if request.method in TARGET_REFRESH:
            target = _contact_uri(request)
            if target is not None:
                self.remote_target = target
        if request.method == "BYE":
            self._event("bye")
        return None

    def receive_response(self, response: Response, method: str) -> None:
        """Update the dialog from a response to our in-dialog or dialog-creating ``method`` request."""
        status = response.status
        if method in TARGET_REFRESH and status < 300:
            target = _contact_uri(response)
            if target is not None:
                self.remote_target = target
        if method == "INVITE":
            if 200 <= status < 300:
                self._event("2xx")
            elif status >= 300 and self.state is DialogState.EARLY:
                self._event("failure")
        if status in (481, 408):
            self.state = DialogState.TERMINATED  # RFC 3261 §12.2.1.2

    def confirm(self) -> None:
        """We (the UAS) sent a 2xx: the dialog is confirmed."""
        self._event("2xx")

    def terminate(self) -> None:
        self.state = DialogState.TERMINATED

    def _event(self, event: str) -> None:
        self.state = _TRANSITIONS.get((self.state, event), self.state)

    def __repr__(self) -> str:
        role = "UAC" if self.is_uac else "UAS"
        return f"<Dialog {role} {self.call_id} {self.local_tag}/{self.remote_tag} {self.state.value}>"
