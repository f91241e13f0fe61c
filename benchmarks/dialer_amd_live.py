"""Answering-machine detection on live media: the labelled set played over real RTP.

Every clip of ``tests/engine/dialing/data/amd`` is played by one RTP endpoint of the engine's media
framework to another (G.711 mu-law over loopback UDP, jitter buffer, the 20 ms media clock), and the
dialer's listener (``engine._dialer_listen.listen_to_answer`` with an ``AnswerListener``, the media
framework's VAD) decides on what arrives, in real time, ``--concurrency`` calls at a time.

Prints JSON: accuracy, people classed as machines, how long after the end of a person's greeting the
verdict came (audio seconds and wall seconds), beeps found and how far after the beep's start the
message would begin, CPU seconds per call, load average.

    .venv/bin/python benchmarks/dialer_amd_live.py [--concurrency 20]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import trio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "engine" / "dialing"))

from conftest import load_set

from engine._dialer_listen import listen_to_answer
from engine.dialing import AnswerListener, BeepEnded, Decided
from engine.media import MediaEngine, Prompt


async def one_call(media: MediaEngine, clip, results: list[dict]) -> None:
    ours = media.allocate(codec="PCMU", name=f"dialer-{clip.name}")
    theirs = media.allocate(codec="PCMU", name=f"called-{clip.name}")
    try:
        ours.set_remote(theirs.local_address)
        theirs.set_remote(ours.local_address)
        started = time.time()
        theirs.play(Prompt(clip.name, clip.samples).player())
        listener = AnswerListener(started, listen_for_beep=True, beep_wait=3.0)
        events: list = []

        def on_event(event) -> bool:
            events.append(event)
            return True

        with trio.move_on_after(90):
            await listen_to_answer(ours, listener, time.time, on_event)
        decided = next((e for e in events if isinstance(e, Decided)), None)
        beep = next((e for e in events if isinstance(e, BeepEnded)), None)
        results.append({
            "clip": clip.name, "label": clip.label, "speech_end": clip.speech_end, "beep_start": clip.beep_start,
            "verdict": None if decided is None else ("machine" if decided.machine else "human"),
            "cause": None if decided is None else decided.result.cause,
            "audio_decided": None if decided is None else decided.result.decided_at,
            "wall_decided": None if decided is None else decided.at - started,
            "beep_heard": None if beep is None else beep.heard,
            "beep_wall": None if beep is None else beep.at - started,
            "filled_frames": listener.filled,
        })
    finally:
        media.release(ours)
        media.release(theirs)


async def main(concurrency: int) -> dict:
    clips = load_set()
    media = MediaEngine(host="127.0.0.1")
    results: list[dict] = []
    cpu0, wall0 = time.process_time(), time.perf_counter()
    async with trio.open_nursery() as nursery:
        await nursery.start(media.run)
        limiter = trio.CapacityLimiter(concurrency)

        async def limited(clip) -> None:
            async with limiter:
                await one_call(media, clip, results)

        async with trio.open_nursery() as calls:
            for clip in clips:
                calls.start_soon(limited, clip)
        nursery.cancel_scope.cancel()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    people = [r for r in results if r["label"] == "human"]
    machines = [r for r in results if r["label"] == "machine"]
    correct = sum((r["verdict"] or "human") == r["label"] for r in results)
    after_greeting = [r["audio_decided"] - r["speech_end"] for r in people if r["verdict"] == "human"]
    after_greeting_wall = [r["wall_decided"] - r["speech_end"] for r in people if r["verdict"] == "human"]
    beeps = [r for r in machines if r["beep_heard"]]
    message_delay = [r["beep_wall"] - r["beep_start"] for r in beeps]
    def spread(values: list[float], low: str, high: str) -> dict[str, float | None]:
        if not values:
            return {low: None, high: None}
        return {low: round(min(values) if low == "min" else sum(values) / len(values), 3), high: round(max(values), 3)}

    causes: dict[str, int] = {}
    for r in results:
        key = f'{r["label"]}:{r["cause"]}'
        causes[key] = causes.get(key, 0) + 1
    return {
        "clips": len(results), "causes": causes, "people": len(people), "machines": len(machines),
        "accuracy": round(correct / len(results), 4),
        "people_classed_machine": [r["clip"] for r in people if r["verdict"] == "machine"],
        "machines_classed_person": [r["clip"] for r in machines if r["verdict"] != "machine"],
        "person_verdict_after_greeting_audio_s": spread(after_greeting, "mean", "max"),
        "person_verdict_after_greeting_wall_s": spread(after_greeting_wall, "mean", "max"),
        "beeps_found": f"{len(beeps)}/{len(machines)}",
        "message_start_after_beep_start_wall_s": spread(message_delay, "min", "max"),
        "frames_filled_as_silence": sum(r["filled_frames"] for r in results),
        "concurrency": concurrency,
        "cpu_s_per_call": round(cpu / len(results), 4),
        "wall_s": round(wall, 1),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps(trio.run(main, args.concurrency), indent=2))
