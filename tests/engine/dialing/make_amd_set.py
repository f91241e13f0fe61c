"""Make the labelled answering-machine-detection set in ``data/amd/`` (run once; the output is committed).

    .venv/bin/python tests/engine/dialing/make_amd_set.py

Needs ``espeak-ng`` and ``sox`` (``apt-get install -y espeak-ng sox``). Every clip is what the dialer
hears after the far end answers: 8 kHz mono G.711 mu-law WAV (8 kB/s, so the whole set stays under
3 MB), band-limited to the telephone band, with a little line noise.

* ``human``: a short pause, then a live answer ("Hello?", "Yes, hello, who is this?"...) in one of
  several voices, speeds and pitches, then the silence of a person waiting for an answer.
* ``machine``: a pause, a recorded greeting of several sentences, then a beep (a sustained tone between
  440 and 2000 Hz) and the silence of the recording starting. The label CSV gives the beep's start.

``labels.csv``: ``file,label,speech_start,speech_end,beep_start`` (seconds; beep_start empty for people).
The choices are drawn from a seeded generator, so running the script again remakes the same set.
"""

from __future__ import annotations

import csv
import random
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path

OUT = Path(__file__).resolve().parent / "data" / "amd"

VOICES = ["en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "es", "es-419"]
VARIANTS = ["", "+f1", "+f2", "+f3", "+m1", "+m3", "+m5", "+klatt"]

HUMAN_EN = ["Hello?", "Hello.", "Yes?", "Hi.", "Yeah, hello?", "Yes, hello, who is this?",
            "Hello, who's calling?", "Speaking.", "Hello, this is Maria.", "Good afternoon.",
            "Hi, who is it?", "Hello? Hello?", "Yes, speaking.", "Hey.", "Mm, hello?"]
HUMAN_ES = ["¿Hola?", "¿Sí?", "Diga.", "¿Bueno?", "Sí, dígame.", "Hola, ¿quién habla?"]

MACHINE_EN = [
    "Hi, you have reached the Smith residence. We can't come to the phone right now. "
    "Please leave a message after the tone.",
    "Hello, this is John. I'm away from my desk at the moment. Leave your name and number and "
    "I will call you back as soon as I can.",
    "The person you are calling is not available. Please record your message after the beep. "
    "When you are finished, you may hang up.",
    "Thanks for calling Acme Plumbing. Our office is closed. Our hours are nine to five, Monday to "
    "Friday. Leave a message and we will return your call.",
    "Hi, it's Sarah. Sorry I missed you. Leave a message.",
    "You have reached five five five, one two three four. Please leave a message.",
]
MACHINE_ES = [
    "Hola, has llamado a Carmen. Ahora no puedo atender. Deja tu mensaje después de la señal.",
    "El número que usted marcó no está disponible. Por favor, deje su mensaje después del tono.",
]

BEEPS = [440, 800, 850, 1000, 1400, 1800, 2000]


def _run(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def _speak(text: str, voice: str, speed: int, pitch: int, path: Path) -> None:
    _run("espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(path), text)


def _duration(path: Path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def _compose(parts: list[Path], out: Path, noise: float, work: Path) -> None:
    """Concatenate parts (already 8 kHz mono 16-bit), add band-limited noise, write mu-law."""
    joined = work / "joined.wav"
    _run("sox", *map(str, parts), str(joined))
    length = _duration(joined)
    hiss = work / "noise.wav"
    _run("sox", "-R", "-n", "-r", "8000", "-c", "1", "-b", "16", str(hiss), "synth", f"{length:.3f}",
         "pinknoise", "vol", f"{noise:.4f}")
    _run("sox", "-R", "-m", str(joined), str(hiss), "-e", "u-law", "-b", "8", "-r", "8000", "-c", "1",
         str(out), "sinc", "300-3400")


def _silence(seconds: float, path: Path) -> Path:
    _run("sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(path), "trim", "0", f"{seconds:.3f}")
    return path


def _speech(text: str, voice: str, rng: random.Random, path: Path, work: Path) -> Path:
    raw = work / "raw.wav"
    _speak(text, voice, rng.randint(140, 200), rng.randint(30, 70), raw)
    # trim espeak's own leading/trailing silence so the labels are exact; level varies per clip
    _run("sox", str(raw), "-r", "8000", "-c", "1", "-b", "16", str(path), "silence", "1", "0.01", "0.5%",
         "reverse", "silence", "1", "0.01", "0.5%", "reverse", "gain", "-n", f"{-rng.uniform(3, 12):.1f}")
    return path


def main() -> int:
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing: apt-get install -y espeak-ng sox", file=sys.stderr)
            return 2
    rng = random.Random(20261125)
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.wav"):
        old.unlink()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for i in range(64):
            spanish = rng.random() < 0.25
            voice = rng.choice(["es", "es-419"] if spanish else VOICES[:5]) + rng.choice(VARIANTS)
            text = rng.choice(HUMAN_ES if spanish else HUMAN_EN)
            lead = rng.uniform(0.2, 1.0)
            speech = _speech(text, voice, rng, work / "speech.wav", work)
            said = _duration(speech)
            parts = [_silence(lead, work / "lead.wav"), speech, _silence(1.3, work / "tail.wav")]
            name = f"human_{i:03d}.wav"
            _compose(parts, OUT / name, rng.uniform(0.002, 0.02), work)
            rows.append([name, "human", f"{lead:.3f}", f"{lead + said:.3f}", ""])
        for i in range(22):
            spanish = rng.random() < 0.25
            voice = rng.choice(["es", "es-419"] if spanish else VOICES[:5]) + rng.choice(VARIANTS)
            text = rng.choice(MACHINE_ES if spanish else MACHINE_EN)
            lead = rng.uniform(0.1, 1.0)
            speech = _speech(text, voice, rng, work / "speech.wav", work)
            said = _duration(speech)
            gap = rng.uniform(0.2, 0.8)
            beep_len = rng.uniform(0.25, 0.8)
            beep = work / "beep.wav"
            _run("sox", "-n", "-r", "8000", "-c", "1", "-b", "16", str(beep), "synth", f"{beep_len:.3f}", "sine",
                 str(rng.choice(BEEPS)), "vol", f"{rng.uniform(0.2, 0.6):.2f}")
            parts = [_silence(lead, work / "lead.wav"), speech, _silence(gap, work / "gap.wav"), beep,
                     _silence(0.4, work / "tail.wav")]
            name = f"machine_{i:03d}.wav"
            _compose(parts, OUT / name, rng.uniform(0.002, 0.02), work)
            rows.append([name, "machine", f"{lead:.3f}", f"{lead + said:.3f}", f"{lead + said + gap:.3f}"])
    with open(OUT / "labels.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "label", "speech_start", "speech_end", "beep_start"])
        writer.writerows(rows)
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(rows)} clips, {total / 1e6:.2f} MB, to {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
