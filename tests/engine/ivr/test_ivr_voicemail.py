"""Leaving a voicemail: greeting, beep, then recording until silence, the maximum, '#' or hang-up."""

from __future__ import annotations

import numpy as np
import pytest

from engine.ivr import (
    Hangup, Play, StartRecording, StopRecording, VoicemailDiscarded, VoicemailRecorded, VoicemailSession,
)

FRAME = 160  # 20 ms at 8 kHz


def tone(seconds: float, amplitude: int = 8000) -> list[bytes]:
    t = np.arange(int(seconds * 8000)) / 8000
    pcm = (amplitude * np.sin(2 * np.pi * 440 * t)).astype("<i2").tobytes()
    return [pcm[i:i + FRAME * 2] for i in range(0, len(pcm), FRAME * 2)]


def silence(seconds: float) -> list[bytes]:
    return tone(seconds, amplitude=20)


def of(commands, kind):
    return [c for c in commands if isinstance(c, kind)]


def to_recording(vm, now=0.0):
    assert of(vm.start(now), Play)[0].prompt == "vm-greeting-sales"
    assert of(vm.playback_done(now + 3), Play)[0].prompt == "beep"
    started = of(vm.playback_done(now + 4), StartRecording)
    assert started and started[0].max_seconds == vm.max_seconds


def feed(vm, frames, start):
    commands, now = [], start
    for frame in frames:
        now += len(frame) / 16000
        commands += vm.audio(frame, now)
        if vm.state == "done":
            break
    return commands


def test_silence_ends_the_recording_and_trailing_silence_is_cut():
    vm = VoicemailSession("sales", caller="+34600111222", silence_seconds=3)
    to_recording(vm)
    commands = feed(vm, tone(4) + silence(10), 4)
    stop = of(commands, StopRecording)[0]
    assert stop.keep_seconds == pytest.approx(4.5, abs=0.05)
    recorded = of(commands, VoicemailRecorded)[0]
    assert (recorded.reason, recorded.caller) == ("silence", "+34600111222")
    assert of(commands, Hangup)


def test_maximum_length_stops_the_recording():
    vm = VoicemailSession("sales", caller="1", max_seconds=10)
    to_recording(vm)
    feed(vm, tone(6), 4)
    assert vm.next_timer() == 14
    commands = vm.handle_timer(14)
    assert of(commands, VoicemailRecorded)[0].reason == "max-length"


def test_hash_key_and_hangup_end_it_and_early_hangups_leave_nothing():
    vm = VoicemailSession("sales", caller="1")
    to_recording(vm)
    feed(vm, tone(2), 4)
    assert of(vm.digit("#", 7), VoicemailRecorded)[0].reason == "key"

    vm = VoicemailSession("sales", caller="1")
    to_recording(vm)
    feed(vm, tone(2), 4)
    commands = vm.hangup(7)
    assert of(commands, VoicemailRecorded)[0].reason == "hangup"
    assert not of(commands, Hangup)  # the caller is already gone

    vm = VoicemailSession("sales", caller="1")
    vm.start(0)
    assert of(vm.hangup(1), VoicemailDiscarded)[0].reason == "hangup-before-beep"
    assert vm.playback_done(2) == [] and vm.next_timer() is None


def test_a_silent_caller_leaves_no_message():
    vm = VoicemailSession("sales", caller="1", silence_seconds=2)
    to_recording(vm)
    commands = feed(vm, silence(5), 4)
    assert of(commands, VoicemailDiscarded)[0].reason == "too-short"


def test_a_key_skips_the_greeting_and_garbage_audio_is_harmless():
    vm = VoicemailSession("sales", caller="1")
    vm.start(0)
    commands = vm.digit("5", 1)
    assert of(commands, Play)[0].prompt == "beep"
    vm.playback_done(2)
    assert vm.audio(b"\x01", 3) == [] and vm.audio(b"", 3) == []
    assert vm.state == "recording"
