"""Prompts on a SIP call's media leg (plugins/sip/_media.MediaLeg): a prompt that is cancelled stops
only itself, never an announcement or music on hold started on the same call meanwhile."""

from __future__ import annotations

import socket

import numpy as np
import trio

from media_testkit import dominant_frequency
from engine.media import MediaEngine, Prompt, decode_ulaw


def tone_prompt(name: str, frequency: float, seconds: float) -> Prompt:
    n = np.arange(int(8000 * seconds))
    return Prompt(name, (8000 * np.sin(2 * np.pi * frequency * n / 8000)).astype(np.int16))


async def heard_frequency(phone: socket.socket, frames: int = 10) -> float:
    """The main frequency of the next ``frames`` RTP packets the caller's phone gets (what arrived
    before this call is dropped: the engine runs in this thread, so nothing is half-sent)."""
    while True:
        try:
            phone.recv(2048)
        except BlockingIOError:
            break
    audio = []
    with trio.fail_after(10):
        while len(audio) < frames:
            await trio.lowlevel.wait_readable(phone)
            audio.append(decode_ulaw(phone.recv(2048)[12:]))
    return dominant_frequency(np.concatenate(audio))


async def test_a_cancelled_prompt_leaves_an_announcement_started_meanwhile_playing(nursery):
    from plugins.sip._media import MediaLeg

    media = MediaEngine()
    await nursery.start(media.run)
    phone = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    phone.bind(("127.0.0.1", 0))
    phone.setblocking(False)
    endpoint = media.allocate(codec="PCMU")
    endpoint.set_remote(phone.getsockname())
    leg = MediaLeg(media, endpoint, session=None)
    leg.set_hold_music(tone_prompt("music", 400, 1.0).player(loop=True))

    async with trio.open_nursery() as prompts:
        menu = trio.CancelScope()

        async def play_menu() -> None:
            with menu:
                await leg.play_loaded(tone_prompt("menu", 1000, 30))

        prompts.start_soon(play_menu)
        assert await heard_frequency(phone) == 1000
        # An announcement takes over the call (another prompt on the same leg), then the menu's task is
        # cancelled: the announcement must go on, not be replaced by silence or by the music.
        announcement = trio.Event()

        async def announce() -> None:
            await leg.play_loaded(tone_prompt("announcement", 1600, 1.5))
            announcement.set()

        prompts.start_soon(announce)
        with trio.fail_after(10):
            while endpoint.player is None or endpoint.player.prompt.name != "announcement":
                await trio.sleep(0.01)
        menu.cancel()
        with trio.fail_after(10):
            while leg.prompting != 1:
                await trio.sleep(0.01)
        assert await heard_frequency(phone) == 1600
        # When the announcement ends, the caller hears the music on hold again.
        await announcement.wait()
    assert endpoint.player is leg.hold_music
    assert await heard_frequency(phone) == 400
    phone.close()
