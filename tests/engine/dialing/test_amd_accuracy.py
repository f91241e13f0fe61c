"""Answering-machine and beep detection, measured on the labelled set in data/amd/."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from engine.dialing.amd import AmdSettings, AmdVerdict, BeepDetector, CadenceDetector

def classify(clip):
    detector = CadenceDetector()
    for frame in clip.frames():
        result = detector.feed(frame)
        if result is not None:
            return result
    return None


def test_the_set_has_both_labels_in_useful_numbers(amd_clips):
    labels = [c.label for c in amd_clips]
    assert labels.count("human") >= 50 and labels.count("machine") >= 20


def test_accuracy_at_least_90_percent_and_no_more_than_1_percent_of_people_classed_machine(amd_clips):
    correct = 0
    people = [c for c in amd_clips if c.label == "human"]
    people_as_machine = []
    for clip in amd_clips:
        result = classify(clip)
        guess = "machine" if result is not None and result.verdict is AmdVerdict.MACHINE else "human"
        correct += guess == clip.label
        if clip.label == "human" and guess == "machine":
            people_as_machine.append(clip.name)
    accuracy = correct / len(amd_clips)
    print(f"AMD accuracy {accuracy:.1%} on {len(amd_clips)} clips; people classed machine: {people_as_machine}")
    assert accuracy >= 0.90
    assert len(people_as_machine) / len(people) <= 0.01, people_as_machine


def test_people_are_recognised_within_one_second_of_the_end_of_their_greeting(amd_clips):
    for clip in (c for c in amd_clips if c.label == "human"):
        result = classify(clip)
        assert result is not None and result.verdict is AmdVerdict.HUMAN, clip.name
        assert result.decided_at - clip.speech_end <= 1.0, (clip.name, result)


def test_machines_are_recognised_long_before_their_beep(amd_clips):
    for clip in (c for c in amd_clips if c.label == "machine"):
        result = classify(clip)
        assert result is not None and result.verdict is AmdVerdict.MACHINE, clip.name
        assert result.decided_at < clip.beep_start, clip.name


def test_the_beep_is_found_where_it_is_and_never_in_a_person_talking(amd_clips):
    for clip in amd_clips:
        beep = BeepDetector()
        heard = any(beep.feed(frame) for frame in clip.frames())
        if clip.label == "machine":
            assert heard, clip.name
            assert abs(beep.started_at - clip.beep_start) <= 0.1, (clip.name, beep.started_at, clip.beep_start)
            assert beep.ended_at > beep.started_at
        else:
            assert not heard, clip.name


def test_no_clip_of_the_set_is_mistaken_for_a_fax(amd_clips):
    from engine.dialing.amd import FaxDetector

    for clip in amd_clips:
        fax = FaxDetector()
        assert not any(fax.feed(frame) for frame in clip.frames()), clip.name


def test_silence_is_a_machine_after_the_initial_silence_and_not_before():
    detector = CadenceDetector(AmdSettings(initial_silence=2.5))
    quiet = np.zeros(160, dtype=np.int16)
    results = [detector.feed(quiet) for _ in range(125)]
    assert results[123] is None
    assert results[124] is not None and results[124].cause == "INITIALSILENCE"


@settings(max_examples=60, deadline=None)
@given(st.lists(arrays(np.int16, st.sampled_from([0, 1, 80, 160, 161, 320])), max_size=12))
def test_any_audio_is_analysed_without_error(frames):
    detector = CadenceDetector()
    beep = BeepDetector()
    for frame in frames:
        result = detector.feed(frame)
        assert result is None or result.verdict in AmdVerdict
        assert beep.feed(frame) in (True, False)


def tone(frequency: float, seconds: float, amplitude: float = 8000.0) -> np.ndarray:
    t = np.arange(int(seconds * 8000)) / 8000.0
    samples = (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.int16)
    return samples[: len(samples) // 160 * 160].reshape(-1, 160)


def test_fax_answer_tone_is_a_fax_and_a_short_beep_is_not():
    from engine.dialing.amd import FaxDetector

    fax = FaxDetector()
    assert any(fax.feed(frame) for frame in tone(2100.0, 3.0))
    assert 0.8 <= fax.detected_at <= 1.1
    beep = FaxDetector()
    frames = list(tone(1000.0, 0.5)) + list(tone(0.0, 0.5)) + list(tone(2100.0, 0.4))
    assert not any(beep.feed(frame) for frame in frames)
