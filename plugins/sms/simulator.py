"""An SMSC simulator written from the SMPP 3.4 specification, for tests and ``--demo``.

It accepts bind_transceiver (checking system_id/password), answers enquire_link, takes submit_sm
(assigning message ids and, when asked, sending a delivery receipt), sends mobile-originated messages
as deliver_sm (split with UDH when long), answers unbind, and meets garbage with generic_nack. Faults
on demand: ``silent`` (stop answering anything), ``submit_status`` (refuse submissions),
``bind_status`` (refuse binds). Everything it received is kept for assertions.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass, field
from typing import Any

import trio

from ._pdu import (
    ESM_DELIVERY_RECEIPT,
    ESM_UDHI,
    Cmd,
    MessageState,
    Pdu,
    PduReader,
    SmppFramingError,
    SmppPeerError,
    Status,
    Tlv,
    c_string_tlv,
    encode,
    nack,
    response_to,
)
from ._text import decode_payload, split, strip_udh

log = logging.getLogger("centralita.sms.simulator")


@dataclass
class Submitted:
    message_id: str
    source: str
    destination: str
    text: str
    data_coding: int
    udh: bool
    raw: bytes


@dataclass
class _Esme:
    stream: trio.SocketStream
    bound: bool = False
    lock: trio.Lock = field(default_factory=trio.Lock)
    acks: dict[int, int] = field(default_factory=dict)  # sequence -> status
    acked: trio.Event = field(default_factory=trio.Event)


class SmscSimulator:
    def __init__(self, *, system_id: str = "centralita", password: str = "secret", host: str = "127.0.0.1",
                 port: int = 0, receipts: bool = True) -> None:
        self.system_id = system_id
        self.password = password
        self.host = host
        self.port = port
        self.receipts = receipts
        self.silent = False
        self.submit_status = Status.ROK
        self.bind_status = Status.ROK
        self.submitted: list[Submitted] = []
        self.binds = 0
        self.unbinds = 0
        self.enquire_links = 0
        self.nacks_sent = 0
        self.nacks_received = 0
        self._ids = itertools.count(1000)
        self._sequence = itertools.count(1)
        self._esmes: list[_Esme] = []
        self._changed = trio.Event()
        self._nursery: trio.Nursery | None = None

    # ------------------------------------------------------------------------------------ server

    async def run(self, *, task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(self.port, host=self.host)
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started(self.port)
            await trio.serve_listeners(self._serve, listeners)

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def wait_for(self, predicate: Any) -> None:
        """Wait until ``predicate()`` is true (checked after every PDU the simulator handles)."""
        while not predicate():
            await self._changed.wait()

    @property
    def bound_count(self) -> int:
        return sum(1 for e in self._esmes if e.bound)

    async def _serve(self, stream: trio.SocketStream) -> None:
        esme = _Esme(stream)
        self._esmes.append(esme)
        reader = PduReader()
        try:
            while True:
                data = await stream.receive_some(65536)
                if not data:
                    return
                if self.silent:
                    continue
                reader.feed(data)
                while True:
                    try:
                        pdu = reader.next_pdu()
                    except SmppFramingError as exc:
                        await self._write(esme, exc.reply)
                        self.nacks_sent += 1
                        return
                    except SmppPeerError as exc:
                        if exc.reply:
                            await self._write(esme, exc.reply)
                            self.nacks_sent += 1
                        continue
                    if pdu is None:
                        break
                    await self._handle(esme, pdu)
                    self._notify()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            esme.bound = False
            self._esmes.remove(esme)
            self._notify()
            await stream.aclose()

    async def _write(self, esme: _Esme, data: bytes) -> None:
        async with esme.lock:
            await esme.stream.send_all(data)

    async def _handle(self, esme: _Esme, pdu: Pdu) -> None:
        if pdu.command_id == Cmd.BIND_TRANSCEIVER:
            status = self.bind_status
            if esme.bound:
                status = Status.RALYBND
            elif pdu.params.get("system_id") != self.system_id:
                status = Status.RINVSYSID
            elif pdu.params.get("password") != self.password:
                status = Status.RINVPASWD
            esme.bound = status == Status.ROK
            self.binds += esme.bound
            await self._write(esme, encode(response_to(pdu, status, system_id="SIMSMSC")))
        elif pdu.command_id == Cmd.ENQUIRE_LINK:
            self.enquire_links += 1
            await self._write(esme, encode(response_to(pdu)))
        elif pdu.command_id == Cmd.UNBIND:
            self.unbinds += 1
            esme.bound = False
            await self._write(esme, encode(response_to(pdu)))
        elif pdu.command_id == Cmd.SUBMIT_SM:
            await self._submit(esme, pdu)
        elif pdu.command_id == Cmd.GENERIC_NACK:
            self.nacks_received += 1
        elif pdu.is_response:
            esme.acks[pdu.sequence] = pdu.status
            esme.acked.set()
            esme.acked = trio.Event()
        else:
            self.nacks_sent += 1
            await self._write(esme, nack(Status.RINVCMDID, pdu.sequence))

    async def _submit(self, esme: _Esme, pdu: Pdu) -> None:
        if not esme.bound:
            await self._write(esme, encode(response_to(pdu, Status.RINVBNDSTS)))
            return
        if self.submit_status != Status.ROK:
            await self._write(esme, encode(response_to(pdu, self.submit_status)))
            return
        payload = bytes(pdu.params["short_message"])
        udh = bool(pdu.params["esm_class"] & ESM_UDHI)
        body = strip_udh(payload)[1] if udh else payload
        text, _ = decode_payload(pdu.params["data_coding"], body)
        message_id = f"sim{next(self._ids)}"
        self.submitted.append(Submitted(message_id, pdu.params["source_addr"], pdu.params["destination_addr"],
                                        text, pdu.params["data_coding"], udh, payload))
        await self._write(esme, encode(response_to(pdu, message_id=message_id)))
        if self.receipts and pdu.params.get("registered_delivery", 0) & 0x01:
            receipt = (f"id:{message_id} sub:001 dlvrd:001 submit date:2601010000 done date:2601010000 "
                       f"stat:DELIVRD err:000 text:{text[:20]}").encode("latin-1", "replace")
            await self._send_deliver(esme, {
                "source_addr": pdu.params["destination_addr"], "destination_addr": pdu.params["source_addr"],
                "esm_class": ESM_DELIVERY_RECEIPT, "short_message": receipt,
            }, {Tlv.RECEIPTED_MESSAGE_ID: c_string_tlv(message_id), Tlv.MESSAGE_STATE: bytes([MessageState.DELIVERED])})

    async def _send_deliver(self, esme: _Esme, params: dict[str, Any], tlvs: dict[int, bytes] | None = None) -> int:
        sequence = next(self._sequence)
        await self._write(esme, encode(Pdu(Cmd.DELIVER_SM, 0, sequence, params, tlvs or {})))
        return sequence

    # ------------------------------------------------------------------------------------ control

    async def deliver(self, source: str, destination: str, text: str, *, wait_ack: bool = True) -> list[int]:
        """Send a mobile-originated message to the bound ESME; returns the deliver_sm_resp statuses."""
        esme = next((e for e in self._esmes if e.bound), None)
        if esme is None:
            raise RuntimeError("no ESME is bound")
        sequences = []
        for part in split(text, next(self._ids) & 0xFF):
            sequences.append(await self._send_deliver(esme, {
                "source_addr": source, "destination_addr": destination, "data_coding": part.data_coding,
                "esm_class": ESM_UDHI if part.udh else 0, "short_message": part.payload,
            }))
        if not wait_ack:
            return []
        while not all(s in esme.acks for s in sequences):
            await esme.acked.wait()
        return [esme.acks[s] for s in sequences]

    async def send_raw(self, data: bytes) -> None:
        """Write arbitrary bytes to the bound ESME (garbage tests)."""
        esme = next(e for e in self._esmes if e.bound)
        await self._write(esme, data)

    async def drop_connections(self) -> None:
        for esme in list(self._esmes):
            await esme.stream.aclose()
