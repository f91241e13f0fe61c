"""Call recording wired to calls: which calls are recorded, where the file goes, what the bus hears.

Voice channels tell the recorder when a call's two sides are joined on ``engine.media`` (a bridge
of two RTP legs, or a conference room for a call that crosses channels): :meth:`CallRecorder.attach`.
If the call's queue has ``record = true``, or someone asked for it (``POST .../record``), recording
starts there; it stops when the call ends (:meth:`CallRecorder.detach`, or the ``Hangup`` event as a
safety net) or on demand. The media framework does the writing (incremental WAV, full-disk handling);
this module only decides and names.

Files are ``<recordings>/<unix time>-<interaction id>.wav`` (what the console's recordings pages
expect: the stem after the time is the CDR's ``uniqueid``); a call recorded twice (stopped and started
again) gets a second file. The interaction's attributes hold ``recording`` (the latest file) and
``recordings`` (all of them); events ``RecordingStarted`` (``File``, ``Format``) and
``RecordingStopped`` (``File``, ``Duration``, ``Cause``) go on the bus; a failed disk gives
``RecordingFailed`` and the call goes on.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from ._events import Event
from ._model import Interaction

__all__ = ["CallRecorder", "RecordingUnavailable"]

log = logging.getLogger("centralita.recording")


class RecordingUnavailable(ValueError):
    """The call cannot be recorded now (not connected, or its audio does not pass through the engine)."""


class CallRecorder:
    def __init__(self, engine: Any) -> None:
        self.engine = engine
        #: interaction id -> what carries the call's audio: a media Bridge or ConferenceRoom
        self._targets: dict[str, Any] = {}
        #: interaction id -> the recording being written (a media Recording)
        self._active: dict[str, Any] = {}
        self._interactions: dict[str, Interaction] = {}
        self.counters = {"started": 0, "stopped": 0, "failed": 0}
        engine.bus.add_listener(self._on_event)

    def statistics(self) -> dict[str, int]:
        return {**self.counters, "active": len(self._active)}

    # ------------------------------------------------------------------------------------ policy

    def _queue(self, interaction: Interaction) -> Any:
        name = interaction.queue
        if not name:
            return None
        return next((q for q in self.engine.config.queues if q.name == name), None)

    def wanted(self, interaction: Interaction) -> bool:
        """Should this call be recorded once connected? Its queue says so, or someone asked for it.

        Channels also ask this before an agent rings: a recorded call must have its audio anchored on
        the engine even when the channel would otherwise let the phones talk directly."""
        asked = interaction.attributes.get("record")
        if asked is not None:
            return bool(asked)
        queue = self._queue(interaction)
        return bool(queue is not None and queue.record)

    def stereo(self, interaction: Interaction) -> bool:
        queue = self._queue(interaction)
        layout = (queue.record_format if queue is not None else "") or self.engine.config.media.record_format
        return layout != "mono"

    def recording(self, interaction: Interaction) -> Any:
        """The recording being written for ``interaction``, or None."""
        return self._active.get(interaction.id)

    # ------------------------------------------------------------------------------------ wiring

    def attach(self, interaction: Interaction, target: Any) -> None:
        """The call's sides are joined by ``target`` (a Bridge or ConferenceRoom): record if wanted."""
        old = self._targets.get(interaction.id)
        if old is not None and old is not target:
            self.stop(interaction, cause="rebridged")
        self._targets[interaction.id] = target
        self._interactions[interaction.id] = interaction
        if self.wanted(interaction) and interaction.id not in self._active:
            try:
                self.start(interaction)
            except Exception:
                log.exception("%s: recording could not start; the call goes on unrecorded", interaction.id)

    def detach(self, interaction: Interaction, *, cause: str = "hangup") -> None:
        """The call (or this joining of its sides) is over: close the file."""
        self.stop(interaction, cause=cause)
        self._targets.pop(interaction.id, None)
        self._interactions.pop(interaction.id, None)

    def start(self, interaction: Interaction) -> Path:
        """Start recording now; returns the file. Raises :class:`RecordingUnavailable`."""
        if interaction.id in self._active:
            raise RecordingUnavailable(f"interaction {interaction.id} is already being recorded")
        target = self._targets.get(interaction.id)
        if target is None:
            raise RecordingUnavailable(
                f"interaction {interaction.id} has no connected audio through the engine to record"
            )
        path = self._new_path(interaction)
        stereo = self.stereo(interaction)
        recording = target.start_recording(
            path, stereo=stereo, on_alarm=lambda rec, error, i=interaction: self._alarm(i, rec, error)
        )
        if recording.failed:  # could not even create the file (permissions, a full or missing disk)
            target.stop_recording()
            raise RecordingUnavailable(f"cannot write {path}: {recording.error}")
        self._active[interaction.id] = recording
        self.counters["started"] += 1
        interaction.attributes["recording"] = str(path)
        interaction.attributes.setdefault("recordings", []).append(str(path))
        self.engine.bus.publish(
            "RecordingStarted", interaction=interaction.id, File=str(path), Format="stereo" if stereo else "mono",
            Agent=interaction.agent or "", Queue=interaction.queue or "",
        )
        log.info("%s: recording to %s (%s)", interaction.id, path, "stereo" if stereo else "mono")
        return path

    def stop(self, interaction: Interaction, *, cause: str = "stopped") -> bool:
        """Stop recording (idempotent); False when nothing was being recorded."""
        recording = self._active.pop(interaction.id, None)
        if recording is None:
            return False
        target = self._targets.get(interaction.id)
        try:
            if target is not None and getattr(target, "recording", None) is recording:
                target.stop_recording()
            else:
                recording.close()
        except Exception:
            log.exception("%s: closing the recording failed", interaction.id)
        self.counters["stopped"] += 1
        self.engine.bus.publish(
            "RecordingStopped", interaction=interaction.id, File=str(recording.path),
            Duration=round(recording.data_bytes / (2 * recording.channels * 8000), 2), Cause=cause,
        )
        return True

    def _new_path(self, interaction: Interaction) -> Path:
        directory = Path(self.engine.recordings_dir)
        stamp = int(time.time())
        path = directory / f"{stamp}-{interaction.id}.wav"
        while path.exists():  # stopped and restarted within a second: the next free second
            stamp += 1
            path = directory / f"{stamp}-{interaction.id}.wav"
        return path

    def _alarm(self, interaction: Interaction, recording: Any, error: OSError) -> None:
        self.counters["failed"] += 1
        log.error("%s: recording %s stopped: %s (the call goes on)", interaction.id, recording.path, error)
        self.engine.bus.publish("RecordingFailed", interaction=interaction.id, File=str(recording.path),
                                Cause=str(error)[:200])

    def _on_event(self, event: Event) -> None:
        if event.event == "Hangup" and event.interaction is not None:
            interaction = self._interactions.get(event.interaction)
            if interaction is not None:
                self.detach(interaction, cause="hangup")
