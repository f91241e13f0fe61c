"""Listen, whisper and barge through the API on a live call whose media runs through the engine.

The call's legs are real RTP endpoints of the engine's media framework; the caller, the agent and the
supervisor are real UDP "phones" that send tones (440, 1000 and 1800 Hz) and record what they get
back. The voice channel is a small stand-in that hands the engine those legs and "rings" the
supervisor by allocating a third leg: the SIP channel implements the same three methods for real.
"""

from __future__ import annotations

import httpx
import numpy as np
import trio

from engine import Direction, InteractionKind, InteractionState
from engine.console import add_token
from engine.media import RtpPacket, decode_ulaw, encode_ulaw
from engine.testing import open_test_engine, wait_until

CONFIG = """
[[agents]]
id = "alice"
endpoint = "fake:alice"

[[agents]]
id = "sue"
endpoint = "fake:sue"

[[queues]]
name = "support"
members = ["alice"]
"""

TONES = {"caller": 440.0, "agent": 1000.0, "supervisor": 1800.0}


class Phone:
    def __init__(self, sock, ssrc: int) -> None:
        self.sock, self.ssrc, self.seq, self.ts, self.sample = sock, ssrc, 1, 0, 0

    @classmethod
    async def open(cls, ssrc: int) -> Phone:
        sock = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
        await sock.bind(("127.0.0.1", 0))
        return cls(sock, ssrc)

    @property
    def address(self):
        return self.sock.getsockname()

    async def talk(self, dest, frequency: float, frames: int) -> None:
        for _ in range(frames):
            t = (np.arange(160) + self.sample) / 8000
            self.sample += 160
            payload = encode_ulaw((6000 * np.sin(2 * np.pi * frequency * t)).astype(np.int16))
            await self.sock.sendto(RtpPacket(0, self.seq, self.ts, self.ssrc, payload).build(), dest)
            self.seq, self.ts = (self.seq + 1) & 0xFFFF, self.ts + 160
            await trio.sleep(0.02)  # a phone's real-time pacing, not waiting for a condition

    async def listen(self, packets: int) -> np.ndarray:
        got = []
        with trio.fail_after(20):
            while len(got) < packets:
                data, _ = await self.sock.recvfrom(2048)
                got.append(decode_ulaw(RtpPacket.parse(data).payload))
        return np.concatenate(got)

    def drain(self) -> None:
        while True:
            try:
                self.sock._sock.recv(2048, __import__("socket").MSG_DONTWAIT)
            except BlockingIOError:
                return


def hears(audio: np.ndarray, frequency: float) -> bool:
    """Is ``frequency`` a clear part of ``audio`` (more than 5% of its energy within ±40 Hz)?"""
    spectrum = np.abs(np.fft.rfft(audio.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / 8000)
    band = spectrum[(freqs > frequency - 40) & (freqs < frequency + 40)].sum()
    return bool(spectrum.sum() > 0 and band / spectrum.sum() > 0.05 and np.abs(audio).max() > 300)


class FakeVoiceChannel:
    """Just the supervision part of a voice channel, over the engine's real media framework."""

    name = "fakevoice"
    schemes = ("fake",)

    def __init__(self, media, phones) -> None:
        self.media, self.phones = media, phones
        self.legs = {}
        for who in ("caller", "agent"):
            self.legs[who] = media.allocate(name=who, remote=phones[who].address)
        media.bridge(self.legs["caller"], self.legs["agent"])
        self.dropped = []
        self.answer = True

    def endpoint_reachable(self, endpoint: str) -> bool:
        return True

    def statistics(self):
        return {}

    def media_of(self, interaction):
        """Like the SIP channel: the caller's endpoint; the engine finds the agent's through its bridge."""
        return self.legs["caller"]

    async def call_supervisor(self, interaction, endpoint, *, ring_timeout):
        if not self.answer:
            return None
        self.legs["supervisor"] = self.media.allocate(name="supervisor", remote=self.phones["supervisor"].address)
        return self.legs["supervisor"]

    def drop_supervisor(self, interaction, leg):
        self.dropped.append(leg.name)
        self.media.release(leg)


async def _round(channel, phones):
    """Everyone talks at once; returns what each phone heard (the last 0.6 s of 1 s)."""
    for phone in phones.values():
        phone.drain()
    heard = {}
    async with trio.open_nursery() as nursery:
        for who, phone in phones.items():
            nursery.start_soon(phone.talk, channel.legs[who].local_address if who in channel.legs else None, TONES[who], 60)

        async def record(who):
            heard[who] = (await phones[who].listen(50))[-30 * 160:]

        for who in phones:
            if who in channel.legs and not channel.legs[who].closed:
                nursery.start_soon(record, who)
    return heard


async def _call(engine):
    phones = {who: await Phone.open(i + 1) for i, who in enumerate(TONES)}
    channel = FakeVoiceChannel(engine.media, phones)
    engine.channels[channel.name] = channel
    item = engine.new_interaction(InteractionKind.VOICE, Direction.INBOUND, from_="+34911000111", to="100", channel=channel.name)
    item.transition(InteractionState.ACTIVE)
    item.agent = "alice"
    return channel, phones, item


async def test_listen_whisper_barge_and_leave_on_a_live_call(tmp_path):
    async with open_test_engine(CONFIG, data_dir=tmp_path) as engine:
        sue = {"authorization": f"Bearer {await add_token(engine.store, 'sue', 'supervisor')}"}
        channel, phones, item = await _call(engine)
        talk_only = {k: v for k, v in phones.items() if k != "supervisor"}
        heard = await _round(channel, talk_only)
        assert hears(heard["caller"], 1000) and hears(heard["agent"], 440)  # the bridged call before anyone joins
        async with httpx.AsyncClient(base_url=engine.console.url, timeout=30) as client:
            r = await client.post(f"/api/v1/interactions/{item.id}/listen", headers=sue, json={})  # sue's own endpoint
            assert r.status_code == 200 and r.json() == {"interaction": item.id, "supervisor": "sue", "endpoint": "fake:sue",
                                                         "mode": "listen", "state": "joined"}
            heard = await _round(channel, phones)
            assert hears(heard["supervisor"], 440) and hears(heard["supervisor"], 1000)  # listen hears both
            assert not hears(heard["caller"], 1800) and not hears(heard["agent"], 1800)  # and nobody hears them
            assert hears(heard["caller"], 1000) and hears(heard["agent"], 440)  # the call goes on

            r = await client.post(f"/api/v1/interactions/{item.id}/whisper", headers=sue, json={})
            assert r.json()["mode"] == "whisper"
            heard = await _round(channel, phones)
            assert hears(heard["agent"], 1800) and not hears(heard["caller"], 1800)  # the agent hears the coach
            assert hears(heard["supervisor"], 440) and hears(heard["supervisor"], 1000)

            r = await client.post(f"/api/v1/interactions/{item.id}/barge", headers=sue, json={})
            assert r.json()["mode"] == "barge"
            heard = await _round(channel, phones)
            assert hears(heard["agent"], 1800) and hears(heard["caller"], 1800) and hears(heard["caller"], 1000)
            state = (await client.get(f"/api/v1/interactions/{item.id}/supervision", headers=sue)).json()
            assert state["mode"] == "barge"

            assert (await client.delete(f"/api/v1/interactions/{item.id}/supervision", headers=sue)).status_code == 200
            assert channel.dropped == ["supervisor"]
            heard = await _round(channel, talk_only)
            assert hears(heard["caller"], 1000) and hears(heard["agent"], 440)  # bridged again
            assert (await client.get(f"/api/v1/interactions/{item.id}/supervision", headers=sue)).status_code == 404

            # joined again, then the call ends: the supervisor's leg is hung up with it
            await client.post(f"/api/v1/interactions/{item.id}/listen", headers=sue, json={"endpoint": "fake:sue"})
            await engine.end_interaction(item, cause="caller")
            assert channel.dropped == ["supervisor", "supervisor"]
            assert (await client.get(f"/api/v1/interactions/{item.id}/supervision", headers=sue)).status_code == 404


async def test_supervision_refusals(tmp_path):
    async with open_test_engine(CONFIG, data_dir=tmp_path) as engine:
        sue = {"authorization": f"Bearer {await add_token(engine.store, 'sue', 'supervisor')}"}
        alice = {"authorization": f"Bearer {await add_token(engine.store, 'alice', 'agent')}"}
        mike = {"authorization": f"Bearer {await add_token(engine.store, 'mike', 'supervisor')}"}
        channel, phones, item = await _call(engine)
        chat = engine.new_interaction(InteractionKind.CHAT, Direction.INBOUND, from_="v", to="webchat", channel="chat")
        async with httpx.AsyncClient(base_url=engine.console.url, timeout=30) as client:
            base = f"/api/v1/interactions/{item.id}"
            assert (await client.post(f"{base}/listen", headers=alice, json={})).status_code == 403
            assert (await client.post(f"/api/v1/interactions/{chat.id}/listen", headers=sue, json={})).status_code == 409
            assert (await client.post("/api/v1/interactions/nope/listen", headers=sue, json={})).status_code == 404
            for body in ({"endpoint": "sip:2001"}, {"endpoint": ["fake:sue"]}, {"endpoint": "fake:" + "x" * 200},
                         {"endpoint": "fake:sue", "ring_timeout": "soon"}, {"endpoint": "fake:sue", "ring_timeout": 0}):
                r = await client.post(f"{base}/listen", headers=sue, json=body)
                assert r.status_code == 400, (body, r.text)
            # mike has no phone of his own in the configuration: he must name one
            assert (await client.post(f"{base}/listen", headers=mike, json={})).status_code == 400
            channel.answer = False
            r = await client.post(f"{base}/barge", headers=sue, json={})
            assert r.status_code == 409 and "did not answer" in r.json()["error"]
            channel.answer = True
            assert (await client.post(f"{base}/listen", headers=sue, json={})).status_code == 200
            r = await client.post(f"{base}/listen", headers=mike, json={"endpoint": "fake:mike"})
            assert r.status_code == 409 and "sue is already supervising" in r.json()["error"]
            # the supervisor's own phone hangs up: the next look finds the call unsupervised, bridged again
            engine.media.release(channel.legs["supervisor"])
            await wait_until(lambda: engine.console.app.desk_api.supervision.state(item.id) is None, timeout=20)
            heard = await _round(channel, {k: v for k, v in phones.items() if k != "supervisor"})
            assert hears(heard["caller"], 1000) and hears(heard["agent"], 440)
