"""A recorded outbound call: the engine calls a customer (SIPp through a carrier trunk, its audio a
1 kHz tone from the test) for a queue that records, as a callback does, and connects a baresip agent
saying 440 Hz (``connect_agent``). The recording has the customer left and the agent right."""

from __future__ import annotations

import struct
import wave
from pathlib import Path

import numpy as np
import pytest
import trio
from baresip_agent import baresip_agent, loud
from sip_interop_helpers import SCENARIOS, describe, free_udp_port, run_sipp

from engine import Direction, InteractionKind
from engine.media import decode_ulaw, encode_ulaw
from engine.testing import wait_until

pytestmark = pytest.mark.interop

CUSTOMER_HZ, AGENT_HZ = 1000.0, 440.0

SETUP = """
[[sip.users]]
name = "1001"
password = "s3cret"

[[sip.trunks]]
name = "carrier"
server = "sip:127.0.0.1:{port}"
outbound = true
dial = ["_X."]
"""

CONTACT_CENTER = """
[[agents]]
id = "alice"
endpoint = "sip:1001"

[[queues]]
name = "support"
members = ["alice"]
timeout = 10
wrapup = 0
record = true
"""


class CustomerAudio:
    """The customer's phone media (its SIP side is SIPp): says a tone, keeps what it hears."""

    def __init__(self) -> None:
        self.sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        self.heard: list[np.ndarray] = []

    async def bind(self) -> int:
        await self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    async def talk(self, destination: tuple[str, int]) -> None:
        n = np.arange(8000 * 30)
        samples = (8000 * np.sin(2 * np.pi * CUSTOMER_HZ * n / 8000)).astype(np.int16)
        start = trio.current_time()
        for seq, offset in enumerate(range(0, len(samples), 160)):
            header = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, seq * 160, 0x1234ABCD)
            await self.sock.sendto(header + encode_ulaw(samples[offset : offset + 160]), destination)
            await trio.sleep_until(start + (seq + 1) * 0.02)  # a phone's real-time pace

    async def listen(self) -> None:
        while True:
            data = await self.sock.recv(2048)
            if len(data) > 12 and data[1] & 0x7F == 0:
                self.heard.append(decode_ulaw(data[12:]))


def strongest(samples: np.ndarray) -> float:
    data = samples.astype(np.float64)
    spectrum = np.abs(np.fft.rfft(data * np.hanning(len(data))))
    spectrum[0] = 0.0
    return float(np.fft.rfftfreq(len(data), 1 / 8000)[int(np.argmax(spectrum))])


async def test_a_callback_for_a_recorded_queue_records_customer_left_agent_right(recording_engine, tmp_path):
    port = free_udp_port()
    async with recording_engine(CONTACT_CENTER, sip=SETUP.format(port=port)) as (engine, channel):
        started = []
        engine.bus.add_listener(lambda e: started.append(e) if e.event == "RecordingStarted" else None)
        async with baresip_agent(channel, tmp_path, frequency=AGENT_HZ):
            customer = CustomerAudio()
            rtp_port = await customer.bind()
            interaction = engine.new_interaction(
                InteractionKind.VOICE, Direction.OUTBOUND, from_="+34910000000", to="600123456", channel="sip"
            )
            interaction.queue = "support"  # what Engine.dial_callback does for a queued callback
            results: dict = {}
            async with trio.open_nursery() as nursery:

                async def callee() -> None:
                    # The customer talks for 6 s after answering, then hangs up.
                    results["sipp"] = await run_sipp(
                        ["-sf", str(SCENARIOS / "callee_media_at.xml"), "-set", "rtp_port", str(rtp_port),
                         "-i", "127.0.0.1", "-p", str(port), "-m", "1", "-d", "6000"]
                    )

                nursery.start_soon(callee)
                result = await channel.dial(interaction, "600123456", caller_id="+34910000000", ring_timeout=10)
                assert result.outcome == "answered", result
                async with trio.open_nursery() as media:
                    media.start_soon(customer.listen)
                    media.start_soon(customer.talk, channel.media_of(interaction).local_address)
                    assert await channel.connect_agent(interaction, "alice", "sip:1001")
                    assert started and started[0].interaction == interaction.id
                    await wait_until(lambda: interaction.state.value == "ended", timeout=30)
                    media.cancel_scope.cancel()
            assert results["sipp"].returncode == 0, describe(results["sipp"])

    path = Path(interaction.attributes["recording"])
    assert path == Path(started[0].fields["File"]) and path.exists()
    with wave.open(str(path)) as w:
        assert w.getnchannels() == 2
        audio = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, 2)
    customer_side, agent_side = loud(audio[:, 0].copy()), loud(audio[:, 1].copy())
    assert len(customer_side) >= 8000 * 2 and len(agent_side) >= 8000 * 2
    assert abs(strongest(customer_side) - CUSTOMER_HZ) < 15
    assert abs(strongest(agent_side) - AGENT_HZ) < 15
