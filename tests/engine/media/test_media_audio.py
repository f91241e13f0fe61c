"""Audio parts: G.711, resampling, levels/VAD, tones, prompts, TTS, recording, retention, mixing."""

from __future__ import annotations

import os
import subprocess
import time
import wave
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from media_testkit import band_energy, dominant_frequency, require_tool, sox
from engine.media import (
    Conference,
    InbandDtmfDetector,
    MediaUsageError,
    MusicOnHold,
    PromptFormatError,
    PromptLibrary,
    PromptNotFoundError,
    Recording,
    Resampler,
    Role,
    TextToSpeech,
    ToneSource,
    TtsUnavailableError,
    VoiceActivityDetector,
    apply_retention,
    decode_alaw,
    decode_ulaw,
    dtmf_tone,
    encode_alaw,
    encode_ulaw,
    frame_dbfs,
    load_prompt,
    load_wav_8k,
    resample,
)

# -- G.711 ------------------------------------------------------------------------------------------


def test_g711_matches_the_reference_values():
    # G.711 reference points: silence codes, full-scale codes and their decoded values.
    assert encode_ulaw(np.array([0], np.int16)) == b"\xff"
    assert encode_alaw(np.array([0], np.int16)) == b"\xd5"
    assert decode_ulaw(b"\x00\x7f\x80\xff").tolist() == [-32124, 0, 32124, 0]
    assert decode_alaw(b"\x55\xd5\x2a\xaa").tolist() == [-8, 8, -32256, 32256]


@settings(max_examples=100, deadline=None)
@given(arrays(np.int16, st.integers(1, 400)))
def test_g711_round_trip_error_is_within_the_law(pcm):
    for encode, decode in ((encode_ulaw, decode_ulaw), (encode_alaw, decode_alaw)):
        back = decode(encode(pcm)).astype(np.int32)
        error = np.abs(back - pcm.astype(np.int32))
        # logarithmic companding: error grows with the magnitude, ~3% of it, and a few LSBs near zero
        assert np.all(error <= np.maximum(np.abs(pcm.astype(np.int32)) // 16, 16) + 1)


def test_g711_agrees_with_sox(tmp_path):
    t = np.arange(8000) / 8000
    pcm = (12000 * np.sin(2 * np.pi * 300 * t)).astype(np.int16)
    src = tmp_path / "pcm.raw"
    pcm.astype("<i2").tofile(src)
    results = {}
    for law, encode in (("u-law", encode_ulaw), ("a-law", encode_alaw)):
        out = tmp_path / f"{law}.raw"
        sox("-D", "-t", "raw", "-r", "8000", "-e", "signed", "-b", "16", "-c", "1", str(src),
            "-t", "raw", "-e", law, "-b", "8", str(out))
        results[law] = (encode(pcm), out.read_bytes())
    assert results["u-law"][0] == results["u-law"][1]
    # sox rounds to 13 bits before A-law encoding, G.711/G.191 truncates: at most one code apart.
    ours, theirs = (decode_alaw(b).astype(np.int32) for b in results["a-law"])
    assert np.all(np.abs(ours - theirs) <= np.maximum(np.abs(pcm.astype(np.int32)) // 16, 16))
    assert np.mean(ours == theirs) > 0.9


# -- resampling ---------------------------------------------------------------------------------------


def test_dtmf_survives_48k_round_trip_in_20ms_chunks():
    digits = "147*2580369#"
    audio = np.concatenate([np.concatenate([dtmf_tone(d, 70), np.zeros(480, np.int16)]) for d in digits])
    up, down = Resampler(8000, 48000), Resampler(48000, 8000)
    out = []
    for i in range(0, len(audio), 160):  # how a headset driver would do it, one frame at a time
        out.append(down.process(up.process(audio[i : i + 160])))
    result = np.concatenate(out)
    detector = InbandDtmfDetector()
    events = detector.feed(result) + detector.feed(np.zeros(800, np.int16))
    assert [e.digit for e in events] == list(digits)


@pytest.mark.parametrize("rate", [48000, 44100, 22050, 16000, 11025])
def test_resampling_keeps_in_band_tones_and_removes_out_of_band(rate):
    t = np.arange(rate) / rate
    inband = (10000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    out = resample(inband, rate, 8000)
    assert len(out) == 8000
    assert abs(dominant_frequency(out) - 1000) <= 2
    assert 9500 < np.abs(out[100:-100]).max() < 10500
    if rate >= 16000:
        alias = (10000 * np.sin(2 * np.pi * 6000 * t)).astype(np.int16)  # would fold to 2 kHz
        assert np.abs(resample(alias, rate, 8000)[100:-100]).max() < 100


# -- levels and VAD -------------------------------------------------------------------------------------


def test_dbfs_of_known_signals():
    t = np.arange(160) / 8000
    assert abs(frame_dbfs((32767 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16))) < 0.1
    assert abs(frame_dbfs((3277 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)) + 20) < 0.1
    assert frame_dbfs(np.zeros(160, np.int16)) == -120.0


def test_vad_finds_speech_in_noise_with_hangover(tmp_path):
    espeak = require_tool("espeak-ng", "espeak-ng")
    wav = tmp_path / "hello.wav"
    subprocess.run([espeak, "-w", str(wav), "--", "Hello, I would like to speak to an agent please."],
                   check=True, capture_output=True, timeout=60)
    speech = load_wav_8k(wav)
    rng = np.random.default_rng(5)
    silence = rng.normal(0, 30, 8000 * 2)  # -60 dBFS background hiss
    signal = np.concatenate([silence, speech + rng.normal(0, 30, len(speech)), silence]).astype(np.int16)
    vad = VoiceActivityDetector()
    decisions = [vad.feed(signal[i : i + 160]) for i in range(0, len(signal) - 159, 160)]
    lead = decisions[: 2 * 50 - 5]
    talk = decisions[100 : 100 + len(speech) // 160]
    assert not any(lead)
    assert sum(talk) / len(talk) > 0.7
    assert not any(decisions[-40:])  # silence after the hangover
    stats = vad.statistics()
    assert 1 <= stats.talk_spurts <= 6 and stats.current_silence_ms >= 1000


# -- tones ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "country, tone, freqs, on_ms, off_ms",
    [
        ("US", "ringback", (440, 480), 2000, 4000),
        ("US", "busy", (480, 620), 500, 500),
        ("UK", "busy", (400,), 375, 375),
        ("EU", "ringback", (425,), 1000, 4000),
        ("EU", "congestion", (425,), 250, 250),
        ("ES", "busy", (425,), 200, 200),
        ("ES", "ringback", (425,), 1500, 3000),
    ],
)
def test_tone_cadence_and_frequencies(country, tone, freqs, on_ms, off_ms):
    source = ToneSource(country, tone)
    audio = np.concatenate([source.read_frame() for _ in range((on_ms + off_ms) * 2 // 20)])
    loud = np.array([frame_dbfs(audio[i : i + 160]) > -40 for i in range(0, len(audio), 160)])
    on, period = on_ms // 20, (on_ms + off_ms) // 20
    first_quiet = -(-on_ms // 20)  # a frame straddling the edge may go either way
    assert loud[:on].all() and not loud[first_quiet:period].any()
    assert on <= loud[-(-(on_ms + off_ms) // 20) :].sum() <= first_quiet + 1  # the cadence repeats
    burst = audio[: 8 * on_ms]
    total = band_energy(burst, 0, 4000)
    assert sum(band_energy(burst, f - 10, f + 10) for f in freqs) / total > 0.95


def test_sit_plays_three_rising_tones_once():
    source = ToneSource("EU", "sit", repeat=False)
    frames = []
    while (frame := source.read_frame()) is not None:
        frames.append(frame)
    audio = np.concatenate(frames)
    assert [round(dominant_frequency(audio[i * 2880 : i * 2880 + 2400]), -1) for i in range(3)] == [950, 1400, 1800]
    with pytest.raises(MediaUsageError, match="ES"):
        ToneSource("XX", "busy")


# -- prompts ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "rate, bits, channels, encoding",
    [(8000, 16, 1, "signed"), (48000, 16, 2, "signed"), (44100, 24, 1, "signed"), (16000, 32, 1, "floating-point"),
     (22050, 8, 1, "unsigned"), (8000, 8, 1, "a-law"), (8000, 8, 1, "mu-law"), (11025, 32, 2, "signed")],
)
def test_prompts_in_any_pcm_format_load_as_8k_mono(tmp_path, rate, bits, channels, encoding):
    path = tmp_path / "prompt.wav"
    sox("-n", "-r", str(rate), "-b", str(bits), "-c", str(channels), "-e", encoding, str(path),
        "synth", "0.5", "sine", "600", "vol", "0.5")
    prompt = load_prompt(path)
    assert abs(prompt.duration - 0.5) < 0.01
    assert abs(dominant_frequency(prompt.samples) - 600) <= 3
    assert 14000 < np.abs(prompt.samples).max() < 18000


@pytest.mark.parametrize(
    "maker, message",
    [
        (lambda p: sox("-n", "-r", "8000", "-e", "ima-adpcm", str(p), "synth", "0.2", "sine", "500"), "IMA ADPCM"),
        (lambda p: sox("-n", "-r", "8000", "-e", "gsm-full-rate", str(p), "synth", "0.2", "sine", "500"), "GSM"),
        (lambda p: p.write_bytes(b"ID3\x03 this is an mp3 really"), "not a WAV"),
        (lambda p: p.write_bytes(b"RIFF\x10\x00\x00\x00WAVEfmt \x04\x00\x00\x00abcd"), "fmt chunk too short"),
        (lambda p: p.write_bytes(b""), "not a WAV"),
    ],
)
def test_unsupported_prompts_fail_at_load_with_a_clear_error(tmp_path, maker, message):
    path = tmp_path / "bad.wav"
    maker(path)
    with pytest.raises(PromptFormatError, match=message) as info:
        load_prompt(path)
    assert "bad.wav" in str(info.value)


def test_prompt_library_languages_and_fallback(tmp_path):
    for lang, freq in (("en", 500), ("es", 700)):
        (tmp_path / lang).mkdir()
        sox("-n", "-r", "16000", "-b", "16", str(tmp_path / lang / "welcome.wav"), "synth", "0.3", "sine", str(freq))
    sox("-n", "-r", "8000", "-b", "16", str(tmp_path / "en" / "goodbye.wav"), "synth", "0.3", "sine", "900")
    (tmp_path / "es" / "broken.wav").write_bytes(b"RIFF nonsense")
    library = PromptLibrary(tmp_path, fallback=["en"])
    assert abs(dominant_frequency(library.load("welcome", "es-MX").samples) - 700) < 5
    assert abs(dominant_frequency(library.load("goodbye", "es").samples) - 900) < 5  # fallback to en
    assert library.load("welcome", "es") is library.load("welcome", "es")  # cached
    library.validate(["welcome", "goodbye"], ["es", "en", None])
    assert library.has_prompt("goodbye", "es") and not library.has_prompt("nothere")
    with pytest.raises(PromptFormatError, match="broken.wav"):
        library.validate(["welcome", "broken"], ["es"])
    with pytest.raises(PromptNotFoundError):
        library.load("nothere", "es")
    with pytest.raises(PromptNotFoundError):
        library.load("../en/welcome", "es")


def test_music_on_hold_loops_seamlessly(tmp_path):
    path = tmp_path / "moh.wav"
    sox("-n", "-r", "8000", "-b", "16", str(path), "synth", "0.25", "sine", "400")  # 12.5 frames
    player = MusicOnHold(path).player()
    audio = np.concatenate([player.read_frame() for _ in range(100)])  # 2 s from a 0.25 s file
    assert len(audio) == 16000 and not player.finished
    assert (np.abs(audio.reshape(-1, 160)).max(axis=1) > 1000).all()


async def test_tts_speaks_caches_and_reports_when_missing(tmp_path):
    require_tool("espeak-ng", "espeak-ng")
    tts = TextToSpeech(tmp_path / "cache")
    prompt = await tts.synthesize("Your call is number three in the queue.")
    assert prompt.duration > 1.0 and np.abs(prompt.samples).max() > 3000
    cached = tts.cache_path("Your call is number three in the queue.")
    assert cached.is_file()
    with wave.open(str(cached)) as w:
        assert (w.getframerate(), w.getnchannels()) == (8000, 1)
    mtime = cached.stat().st_mtime_ns
    await tts.synthesize("Your call is number three in the queue.")
    assert cached.stat().st_mtime_ns == mtime  # served from the cache
    assert tts.cache_path("x", "en") != tts.cache_path("x", "es")
    missing = TextToSpeech(tmp_path / "c2", executable="espeak-ng-not-installed")
    assert not missing.available()
    with pytest.raises(TtsUnavailableError, match="apt-get install -y espeak-ng"):
        await missing.synthesize("hello")


# -- recording -------------------------------------------------------------------------------------------


def tone(freq: float, i: int) -> np.ndarray:
    t = (np.arange(160) + 160 * i) / 8000
    return (6000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def read_wav(path: Path) -> tuple[int, np.ndarray]:
    with wave.open(str(path)) as w:
        channels = w.getnchannels()
        assert w.getframerate() == 8000 and w.getsampwidth() == 2
        return channels, np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, channels)


def test_recording_is_valid_while_being_written_and_loses_at_most_a_second(tmp_path):
    path = tmp_path / "live.wav"
    rec = Recording(path, stereo=True)
    for i in range(175):  # 3.5 s, never closed: as if the process died now
        rec.write(tone(500, i), tone(1500, i))
    channels, audio = read_wav(path)  # the header on disk is already true
    assert channels == 2 and 2.5 <= len(audio) / 8000 <= 3.5
    assert abs(dominant_frequency(audio[:, 0]) - 500) < 10 and abs(dominant_frequency(audio[:, 1]) - 1500) < 10
    rec.close()
    assert read_wav(path)[1].shape == (28000, 2)


def test_mono_recording_mixes_both_sides(tmp_path):
    rec = Recording(tmp_path / "mono.wav", stereo=False)
    for i in range(50):
        rec.write(tone(500, i), tone(1500, i))
    rec.close()
    channels, audio = read_wav(tmp_path / "mono.wav")
    assert channels == 1
    total = band_energy(audio[:, 0], 0, 4000)
    assert band_energy(audio[:, 0], 490, 510) / total > 0.4 and band_energy(audio[:, 0], 1490, 1510) / total > 0.4


def test_full_disk_closes_the_recording_cleanly_and_raises_the_alarm(small_disk):
    alarms = []
    rec = Recording(small_disk / "call.wav", stereo=True, on_alarm=lambda r, e: alarms.append(e.errno))
    for i in range(500):  # 10 s of stereo = 320 KB, far more than fits
        rec.write(tone(440, i), tone(880, i))  # never raises: the call goes on
    rec.close()
    assert alarms == [28]  # ENOSPC, once
    assert rec.failed and rec.closed
    channels, audio = read_wav(small_disk / "call.wav")  # what is there is a valid WAV
    assert channels == 2 and len(audio) >= 8000
    assert abs(dominant_frequency(audio[:, 0]) - 440) < 10


def test_recording_to_a_device_that_is_full_from_the_start():
    alarms = []
    rec = Recording("/dev/full", stereo=False, on_alarm=lambda r, e: alarms.append(e.errno))
    rec.write(tone(440, 0))
    rec.close()
    assert alarms == [28] and rec.failed


def test_retention_deletes_only_old_recordings(tmp_path):
    now = time.time()
    for name, age_days in (("old/a.wav", 40), ("old/b.wav", 31), ("new.wav", 2), ("keep.txt", 90)):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x")
        os.utime(path, (now - age_days * 86400, now - age_days * 86400))
    deleted = apply_retention(tmp_path, 30, now=now)
    assert sorted(p.name for p in deleted) == ["a.wav", "b.wav"]
    assert (tmp_path / "new.wav").exists() and (tmp_path / "keep.txt").exists()
    assert apply_retention(tmp_path / "missing", 30) == []


# -- mixing -----------------------------------------------------------------------------------------------


def test_conference_roles_table():
    conf = Conference()
    conf.add("caller")
    conf.add("agent")
    conf.add("sup", Role.LISTEN)
    voice = {"caller": tone(300, 0), "agent": tone(700, 0), "sup": tone(1900, 0)}

    def heard(out, who):
        return {f for f, name in ((300, "caller"), (700, "agent"), (1900, "sup"))
                if band_energy(out[who], f - 60, f + 60) > 1e9}

    out = conf.mix(voice)
    assert heard(out, "caller") == {700} and heard(out, "agent") == {300} and heard(out, "sup") == {300, 700}
    conf.set_role("sup", Role.WHISPER, whisper_to="agent")
    out = conf.mix(voice)
    assert heard(out, "caller") == {700} and heard(out, "agent") == {300, 1900} and heard(out, "sup") == {300, 700}
    conf.set_role("sup", "barge")
    out = conf.mix(voice)
    assert heard(out, "caller") == {700, 1900} and heard(out, "agent") == {300, 1900}
    with pytest.raises(MediaUsageError):
        conf.set_role("sup", Role.WHISPER)
    loud = {"caller": np.full(160, 30000, np.int16), "agent": np.full(160, 30000, np.int16)}
    assert conf.mix(loud)["sup"].max() == 32767  # clipped, not wrapped
