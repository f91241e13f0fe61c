"""Listen, whisper and barge over real SIP: a SIPp customer on a trunk (its audio from a UDP socket of the
test, 1000 Hz), the agent on a baresip phone (440 Hz), the supervisor on another baresip phone
(1800 Hz). The supervisor's phone is dialed by the engine through the SIP channel when the API asks;
what the customer hears is checked per mode, what each phone heard from baresip's recordings."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import httpx
import numpy as np
import pytest
import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "integration" / "sip"))

from baresip_agent import baresip_agent, loud, read_wav, tone
from sip_interop_helpers import FAST_TIMERS, SCENARIOS, free_udp_port, run_sipp

from engine import Direction, InteractionKind
from engine.console import add_token
from engine.media import decode_ulaw, encode_ulaw
from engine.testing import open_test_engine, wait_until
from plugins.sip import plugin as sip_plugin

pytestmark = pytest.mark.interop

CONFIG = """
[[agents]]
id = "alice"
endpoint = "sip:1001"

[[agents]]
id = "sue"
endpoint = "sip:2001"

[[queues]]
name = "support"
members = ["alice"]
wrapup = 0

[sip]
listen = ["udp:127.0.0.1:0"]

[[sip.users]]
name = "1001"
password = "s3cret"

[[sip.users]]
name = "2001"
password = "s3cret"

[sip.security]
rate = 100000
burst = 100000
"""


def has(audio: np.ndarray, frequency: float) -> bool:
    """More than 5% of the energy of ``audio`` within ±40 Hz of ``frequency``."""
    audio = loud(audio, 300)
    if len(audio) < 1600:
        return False
    spectrum = np.abs(np.fft.rfft(audio.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / 8000)
    return bool(spectrum[(freqs > frequency - 40) & (freqs < frequency + 40)].sum() / spectrum.sum() > 0.05)


class Customer:
    """The customer's media: says 1000 Hz at a phone's pace, keeps what it hears in per-phase lists."""

    def __init__(self) -> None:
        self.sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        self.phases: dict[str, list[np.ndarray]] = {"alone": []}
        self.phase = "alone"

    async def bind(self) -> int:
        await self.sock.bind(("127.0.0.1", 0))
        return self.sock.getsockname()[1]

    async def talk(self, destination) -> None:
        samples = tone(1000.0, 60.0)
        start = trio.current_time()
        for seq, offset in enumerate(range(0, len(samples), 160)):
            header = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, seq * 160, 0x1234ABCD)
            await self.sock.sendto(header + encode_ulaw(samples[offset : offset + 160]), destination)
            await trio.sleep_until(start + (seq + 1) * 0.02)  # a phone's real-time pace

    async def listen(self) -> None:
        while True:
            data = await self.sock.recv(2048)
            if len(data) > 12 and data[1] & 0x7F == 0:
                self.phases[self.phase].append(decode_ulaw(data[12:]))

    def heard(self, phase: str) -> np.ndarray:
        chunks = self.phases.get(phase) or [np.zeros(0, dtype=np.int16)]
        return np.concatenate(chunks)

    def start(self, phase: str) -> None:
        self.phase = phase
        self.phases[phase] = []


async def test_a_supervisor_on_a_sip_phone_listens_whispers_and_barges(tmp_path: Path) -> None:
    port = free_udp_port()
    trunk = f'\n[[sip.trunks]]\nname = "carrier"\nserver = "sip:127.0.0.1:{port}"\noutbound = true\ndial = ["_X."]\n'
    async with open_test_engine(CONFIG + trunk + FAST_TIMERS, plugins=[sip_plugin],
                                data_dir=tmp_path) as engine:
        channel = engine.channels["sip"]
        sue = {"authorization": f"Bearer {await add_token(engine.store, 'sue', 'supervisor')}"}
        async with baresip_agent(channel, tmp_path, user="1001", frequency=440.0) as agent_phone, \
                baresip_agent(channel, tmp_path, user="2001", frequency=1800.0) as supervisor_phone:
            customer = Customer()
            rtp_port = await customer.bind()
            call = engine.new_interaction(InteractionKind.VOICE, Direction.OUTBOUND, from_="+34910000000",
                                          to="600123456", channel="sip")
            results: dict = {}
            async with trio.open_nursery() as nursery:

                async def callee() -> None:
                    results["sipp"] = await run_sipp(
                        ["-sf", str(SCENARIOS / "callee_media_at.xml"), "-set", "rtp_port", str(rtp_port),
                         "-i", "127.0.0.1", "-p", str(port), "-m", "1", "-d", "30000"])

                nursery.start_soon(callee)
                assert (await channel.dial(call, "600123456", caller_id="+34910000000", ring_timeout=10)).outcome == "answered"
                nursery.start_soon(customer.listen)
                nursery.start_soon(customer.talk, channel.media_of(call).local_address)
                assert await channel.connect_agent(call, "alice", "sip:1001"), agent_phone.log()
                await wait_until(lambda: has(customer.heard("alone"), 440), timeout=20)

                async with httpx.AsyncClient(base_url=engine.console.url, timeout=40) as client:
                    customer.start("listen")
                    r = await client.post(f"/api/v1/interactions/{call.id}/listen", headers=sue, json={})
                    assert r.status_code == 200, (r.text, supervisor_phone.log())
                    legs = [i for i in engine.interactions.values() if i.attributes.get("supervising") == call.id]
                    assert [(leg.to, leg.state.value) for leg in legs] == [("2001", "active")]
                    await wait_until(lambda: len(loud(customer.heard("listen"))) >= 16000, timeout=20)
                    customer.start("whisper")
                    assert (await client.post(f"/api/v1/interactions/{call.id}/whisper", headers=sue, json={})).status_code == 200
                    await wait_until(lambda: len(loud(customer.heard("whisper"))) >= 16000, timeout=20)
                    customer.start("barge")
                    assert (await client.post(f"/api/v1/interactions/{call.id}/barge", headers=sue, json={})).status_code == 200
                    await wait_until(lambda: has(customer.heard("barge"), 1800), timeout=20)
                    assert (await client.delete(f"/api/v1/interactions/{call.id}/supervision", headers=sue)).status_code == 200
                    await wait_until(lambda: legs[0].state.value == "ended", timeout=20)
                await channel.hangup(call)
                await engine.end_interaction(call, cause="test")
                nursery.cancel_scope.cancel()
        # the customer: the agent all along; the supervisor only once they barged in
        assert has(customer.heard("listen"), 440) and not has(customer.heard("listen"), 1800)
        assert has(customer.heard("whisper"), 440) and not has(customer.heard("whisper"), 1800)
        assert has(customer.heard("barge"), 1800) and has(customer.heard("barge"), 440)
        # the supervisor's phone heard the customer and the agent
        (heard_by_supervisor,) = supervisor_phone.recordings("dec")
        samples, _ = read_wav(heard_by_supervisor)
        assert has(samples, 1000) and has(samples, 440)
        # the agent's phone heard the customer, and the supervisor (whisper and barge)
        (heard_by_agent,) = agent_phone.recordings("dec")
        samples, _ = read_wav(heard_by_agent)
        assert has(samples, 1000) and has(samples, 1800)
