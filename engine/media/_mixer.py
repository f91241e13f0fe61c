"""Conference mixing with supervisor roles, sans-IO.

Who hears whom is a table (DESIGN.md habit 6). A participant's role says whom its voice reaches:

============  =========================================  ===============================
role          its voice reaches                          it hears
============  =========================================  ===============================
``party``     every other participant                    everyone whose voice reaches it
``listen``    nobody (silent monitoring)                 every party and barge-in
``whisper``   only its ``whisper_to`` target (an agent)  every party and barge-in
``barge``     every other participant                    everyone whose voice reaches it
============  =========================================  ===============================

So with a caller, an agent and a supervisor: ``listen`` hears both and says nothing; ``whisper`` is
heard by the agent only (the caller never hears the supervisor); ``barge`` joins as a third party.
Mixing sums in int32 and clips once, and each participant's own voice is taken back out of the sum.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ._audio import FRAME_SAMPLES
from ._errors import MediaUsageError

__all__ = ["Role", "Conference"]


class Role(enum.Enum):
    PARTY = "party"
    LISTEN = "listen"
    WHISPER = "whisper"
    BARGE = "barge"


_PUBLIC = frozenset({Role.PARTY, Role.BARGE})


@dataclass(slots=True)
class _Participant:
    role: Role
    whisper_to: str | None


class Conference:
    def __init__(self) -> None:
        self._participants: dict[str, _Participant] = {}

    def add(self, name: str, role: Role | str = Role.PARTY, *, whisper_to: str | None = None) -> None:
        if name in self._participants:
            raise MediaUsageError(f"{name!r} is already in the conference")
        self._participants[name] = self._make(name, role, whisper_to)

    def set_role(self, name: str, role: Role | str, *, whisper_to: str | None = None) -> None:
        """Switch a supervisor between listen, whisper and barge mid-call."""
        if name not in self._participants:
            raise MediaUsageError(f"{name!r} is not in the conference")
        self._participants[name] = self._make(name, role, whisper_to)

    def _make(self, name: str, role: Role | str, whisper_to: str | None) -> _Participant:
        role = Role(role)
        if role is Role.WHISPER:
            if not whisper_to or whisper_to == name:
                raise MediaUsageError("whisper needs whisper_to: the participant (agent) who hears it")
        elif whisper_to is not None:
            raise MediaUsageError("whisper_to only goes with the whisper role")
        return _Participant(role, whisper_to)

    def remove(self, name: str) -> None:
        self._participants.pop(name, None)

    def __contains__(self, name: object) -> bool:
        return name in self._participants

    def __len__(self) -> int:
        return len(self._participants)

    def role(self, name: str) -> Role:
        return self._participants[name].role

    def hears(self, listener: str, speaker: str) -> bool:
        """The table above as a predicate."""
        if listener == speaker:
            return False
        p = self._participants[speaker]
        return p.role in _PUBLIC or (p.role is Role.WHISPER and p.whisper_to == listener)

    def mix(self, inputs: Mapping[str, np.ndarray | None], samples: int = FRAME_SAMPLES) -> dict[str, np.ndarray]:
        """One tick: what each participant says (None = silence) -> what each one hears."""
        total = np.zeros(samples, dtype=np.int32)
        voices: dict[str, np.ndarray] = {}
        for name, p in self._participants.items():
            frame = inputs.get(name)
            if frame is None:
                continue
            voice = frame.astype(np.int32)
            voices[name] = voice
            if p.role in _PUBLIC:
                total += voice
        out: dict[str, np.ndarray] = {}
        for name, p in self._participants.items():
            heard = total.copy()
            own = voices.get(name)
            if own is not None and p.role in _PUBLIC:
                heard -= own
            for other, q in self._participants.items():
                if q.role is Role.WHISPER and q.whisper_to == name and other in voices:
                    heard += voices[other]
            out[name] = np.clip(heard, -32768, 32767).astype(np.int16)
        return out
