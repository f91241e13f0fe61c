"""The SMS channel: SMPP 3.4 and/or a GSM modem (the SMS device capability), one outbox for both.

Received messages are stored before they are acknowledged: a deliver_sm is answered (and a modem's
SIM slot freed) only once the message is durable; parts of a long message stay unacknowledged until
the joined text is stored, so the SMSC resends whatever a crash interrupted.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections import OrderedDict
from typing import Any

import trio

from engine import DeviceError, InteractionKind, PluginContext
from engine.abc import Capability, MessagingChannel
from engine.messaging import (
    ConversationReplies,
    DeliveryError,
    InteractionBinder,
    MessageStore,
    OutboundMessage,
    Outbox,
    RetryPolicy,
)

from ._link import SmppLink, SmppUrl
from ._optout import is_opt_out
from ._pdu import ESM_DELIVERY_RECEIPT, ESM_UDHI, MessageState, Pdu, Status, Tlv, tlv_text
from ._settings import SmsSettings
from ._text import Joined, Reassembler, decode_payload, split, strip_udh

log = logging.getLogger("centralita.sms")

_RECEIPT_ID = re.compile(r"\bid:(\S+)", re.IGNORECASE)
_RECEIPT_STAT = re.compile(r"\bstat:(\w+)", re.IGNORECASE)
_DELIVERED = {"DELIVRD", "DELIVERED"}
_FAILED = {"UNDELIV", "UNDELIVERABLE", "EXPIRED", "REJECTD", "REJECTED", "DELETED"}


class SmsChannel(ConversationReplies, MessagingChannel):
    name = "sms"
    kinds = frozenset({InteractionKind.SMS})

    def __init__(self, context: PluginContext) -> None:
        self.settings: SmsSettings = context.settings or SmsSettings()
        self.context = context
        self.engine = context.engine
        self.messages = MessageStore(context.store, "sms")
        self.binder = InteractionBinder(context.engine, "sms", InteractionKind.SMS, contact_by="phone")
        self.outbox = Outbox(self.messages, self._deliver,
                             policy=RetryPolicy(first=self.settings.retry_first, cap=self.settings.retry_max),
                             on_delivered=self._delivered)
        # The SMSC may send a receipt before we have recorded the submit_sm_resp's message id.
        self._early_receipts: OrderedDict[str, str] = OrderedDict()
        self._late_status_send, self._late_status_receive = trio.open_memory_channel[tuple[str, str]](1000)
        self.link: SmppLink | None = None
        if self.settings.smpp:
            s = self.settings
            self.link = SmppLink(SmppUrl.parse(s.smpp), self._on_deliver_sm, enquire_interval=s.enquire_interval,
                                 response_timeout=s.response_timeout, reconnect_backoff=s.reconnect_backoff,
                                 reconnect_backoff_max=s.reconnect_backoff_max)
            self.link.on_bound = self.outbox.wake_nowait
        self.reassembler = Reassembler(timeout=self.settings.join_timeout)
        self._held: dict[str, tuple[Any, str]] = {}  # part key -> (ack, destination)
        self._reassembly_kick = trio.Event()
        self.engine_started = trio.Event()
        self.modem: Any = None
        self.received = 0
        self.opt_outs = 0
        self.receipts = 0
        self.undecodable = 0

    # ------------------------------------------------------------------------------------ lifecycle

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.outbox.run)
            nursery.start_soon(self._serve_reassembly)
            nursery.start_soon(self._serve_late_receipts)
            task_status.started()
            await self.resume(nursery, reoffer_after=self.settings.reoffer_after)
            self._attach_modem()
            if self.link is not None:
                await nursery.start(self.link.run)
            await trio.sleep_forever()  # the link may end (unbound at shutdown); the rest keeps serving

    def engine_stopping_nowait(self) -> None:
        if self.link is not None:
            self.link.stop_nowait()

    def statistics(self) -> dict[str, Any]:
        return {
            "smpp_bound": bool(self.link and self.link.is_bound),
            "smpp_connects": self.link.connects if self.link else 0,
            "smpp_peer_errors": self.link.violations if self.link else 0,
            "smpp_last_error": self.link.last_error if self.link else "",
            "modem": getattr(self.modem, "name", None),
            "received": self.received,
            "opt_outs": self.opt_outs,
            "receipts": self.receipts,
            "undecodable": self.undecodable,
            "outbox": self.outbox.statistics(),
        }

    def _attach_modem(self) -> None:
        devices = self.context.devices.with_capability(Capability.SMS)
        if self.settings.modem:
            devices = [d for d in devices if getattr(d, "name", "") == self.settings.modem]
        if not devices:
            if self.settings.modem:
                log.warning("sms: no device named %r with the SMS capability", self.settings.modem)
            return
        self.modem = devices[0]
        self.modem.set_message_handler(self._on_modem_sms)
        log.info("sms: using GSM modem %s", getattr(self.modem, "name", "?"))

    # ------------------------------------------------------------------------------------- inbound

    async def _on_modem_sms(self, sms: Any) -> None:
        """The modem's handler: return only once stored (the modem deletes the SIM copy afterwards)."""
        address = self.settings.address or str(getattr(sms, "device", "modem"))
        text = str(sms.text)
        meta: dict[str, Any] = {"device": getattr(sms, "device", "")}
        if getattr(sms, "incomplete", False):
            meta["incomplete"] = True
        if getattr(sms, "error", ""):
            meta["problem"] = sms.error
        await self._inbound(str(sms.sender), address, text, f"modem:{getattr(sms, 'device', '')}:{sms.key}", meta)

    async def _on_deliver_sm(self, pdu: Pdu, ack: Any) -> None:
        params = pdu.params
        if params.get("esm_class", 0) & 0x3C == ESM_DELIVERY_RECEIPT:
            await self._receipt(pdu)
            ack(Status.ROK)
            return
        payload = bytes(params.get("short_message", b"")) or pdu.tlvs.get(Tlv.MESSAGE_PAYLOAD, b"")
        udh = None
        if params.get("esm_class", 0) & ESM_UDHI:
            udh, payload = strip_udh(payload)
        text, problem = decode_payload(params.get("data_coding", 0), payload)
        if problem:
            self.undecodable += 1
            log.info("sms from %s: %s", params.get("source_addr", "?"), problem)
        source, destination = str(params.get("source_addr", "")), str(params.get("destination_addr", ""))
        if udh is not None and udh.total > 1:
            key = uuid.uuid4().hex
            self._held[key] = (ack, destination)
            for joined in self.reassembler.add(source, udh, text, key, trio.current_time()):
                await self._store_joined(joined)
            self._reassembly_kick.set()
            return
        try:
            await self._inbound(source, destination, text, f"smpp:{uuid.uuid4().hex}",
                                {"problem": problem} if problem else {})
        except Exception:
            log.exception("sms: storing a received message failed; the SMSC will resend it")
            ack(Status.RSYSERR)
            return
        ack(Status.ROK)

    async def _store_joined(self, joined: Joined) -> None:
        held = [self._held.pop(k) for k in joined.keys if k in self._held]
        destination = held[0][1] if held else self.settings.address
        meta = {} if joined.complete else {"incomplete": True}
        try:
            await self._inbound(joined.sender, destination, joined.text, f"smpp:{uuid.uuid4().hex}", meta)
            status = Status.ROK
        except Exception:
            log.exception("sms: storing a joined message failed; the SMSC will resend its parts")
            status = Status.RSYSERR
        for ack, _ in held:
            ack(status)

    async def _serve_reassembly(self) -> None:
        while True:
            due = self.reassembler.next_timer()
            timeout = float("inf") if due is None else max(0.0, due - trio.current_time())
            with trio.move_on_after(timeout):
                await self._reassembly_kick.wait()
            self._reassembly_kick = trio.Event()
            for joined in self.reassembler.handle_timer(trio.current_time()):
                log.info("sms from %s: parts missing after %.0fs; stored incomplete", joined.sender, self.reassembler.timeout)
                await self._store_joined(joined)

    async def _receipt(self, pdu: Pdu) -> None:
        self.receipts += 1
        text = bytes(pdu.params.get("short_message", b"")).decode("latin-1", "replace")
        message_id = tlv_text(pdu.tlvs[Tlv.RECEIPTED_MESSAGE_ID]) if Tlv.RECEIPTED_MESSAGE_ID in pdu.tlvs else ""
        if not message_id and (m := _RECEIPT_ID.search(text)):
            message_id = m.group(1)
        state = pdu.tlvs.get(Tlv.MESSAGE_STATE, b"")
        stat = (m.group(1).upper() if (m := _RECEIPT_STAT.search(text)) else "")
        if state[:1] == bytes([MessageState.DELIVERED]) or stat in _DELIVERED:
            status = "delivered"
        elif (state[:1] and state[0] in (MessageState.UNDELIVERABLE, MessageState.EXPIRED, MessageState.REJECTED,
                                          MessageState.DELETED)) or stat in _FAILED:
            status = "failed"
        else:
            return
        if message_id and not await self.messages.set_status_by_external(message_id, status):
            self._early_receipts[message_id] = status
            # The outbox may have recorded the id while we looked: check again now that the receipt
            # is parked (whichever side comes second applies it).
            if await self.messages.set_status_by_external(message_id, status):
                self._early_receipts.pop(message_id, None)
                return
            while len(self._early_receipts) > 1000:
                dropped, _ = self._early_receipts.popitem(last=False)
                log.info("sms: receipt for unknown message id %s ignored", dropped)

    def _delivered(self, message: OutboundMessage, external: str | None) -> None:
        status = self._early_receipts.pop(external or "", None)
        if status is not None:
            try:
                self._late_status_send.send_nowait((external or "", status))
            except trio.WouldBlock:
                log.info("sms: too many early receipts; %s stays 'sent'", external)

    async def _serve_late_receipts(self) -> None:
        async for external, status in self._late_status_receive:
            await self.messages.set_status_by_external(external, status)

    async def _inbound(self, customer: str, address: str, text: str, external_id: str, meta: dict[str, Any]) -> None:
        if is_opt_out(text, self.settings.opt_out_keywords):
            self.opt_outs += 1
            already = await self.messages.opted_out(customer)
            await self.messages.opt_out(customer, text.strip()[:40])
            conversation = await self.messages.open_conversation_of(customer, address)
            result = await self.messages.record_inbound(customer=customer, address=address, body=text,
                                                        external_id=external_id, conversation=conversation,
                                                        meta={**meta, "opt_out": True})
            await self.messages.close(result.conversation)
            log.info("sms: %s opted out (%r)", customer, text.strip()[:40])
            if self.settings.opt_out_reply and not already:
                await self.messages.queue_outbound(result.conversation, self.settings.opt_out_reply,
                                                   meta={"opt_out_confirmation": True, "auto": True})
                self.outbox.wake_nowait()
            return
        conversation = await self.messages.open_conversation_of(customer, address)
        result = await self.messages.record_inbound(customer=customer, address=address, body=text,
                                                    external_id=external_id, conversation=conversation, meta=meta)
        if result.duplicate:
            return
        self.received += 1
        await self.binder.inbound(result.conversation, customer=customer, address=address, message=text[:500])

    # ------------------------------------------------------------------------------------ outbound

    def check_reply(self, text: str) -> None:
        if len(text) > self.settings.max_text:
            raise ValueError(f"an SMS reply may have at most {self.settings.max_text} characters, got {len(text)}")

    async def _deliver(self, message: OutboundMessage) -> str:
        if not message.meta.get("opt_out_confirmation") and await self.messages.opted_out(message.customer):
            raise DeliveryError(f"{message.customer} opted out of SMS", permanent=True)
        routes = ["smpp", "modem"] if self.settings.prefer == "smpp" else ["modem", "smpp"]
        for route in routes:
            if route == "smpp" and self.link is not None and self.link.is_bound:
                return await self._submit_smpp(message)
            if route == "modem" and self.modem is not None:
                try:
                    return f"modem:{await self.modem.send_sms(message.customer, message.body)}"
                except DeviceError as exc:
                    raise DeliveryError(f"modem: {exc}") from exc
                except ValueError as exc:  # an invalid number: retrying cannot help
                    raise DeliveryError(f"modem refused the number: {exc}", permanent=True) from exc
        raise DeliveryError("no SMS route is up (SMPP not bound, no modem)")

    async def _submit_smpp(self, message: OutboundMessage) -> str:
        assert self.link is not None
        # The reference is derived from the message id, so a retry after a partial send reuses it and the
        # phone joins the parts instead of showing two half messages.
        parts = split(message.body, int(message.id[:2], 16))
        ids = []
        for part in parts:
            ids.append(await self.link.submit({
                "source_addr": self.settings.address,
                "source_addr_ton": 0 if self.settings.address.isdigit() else 5,
                "destination_addr": message.customer,
                "dest_addr_ton": 1 if message.customer.startswith("+") else 0,
                "dest_addr_npi": 1,
                "esm_class": ESM_UDHI if part.udh else 0,
                "data_coding": part.data_coding,
                "registered_delivery": 1 if self.settings.delivery_receipts else 0,
                "short_message": part.payload,
            }))
        return ids[0]
