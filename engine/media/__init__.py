"""Centralita media: RTP/RTCP, G.711, DTMF, bridging, conferencing, recording, prompts, tones, TTS.

The audio currency is the **frame**: 20 ms of 8 kHz signed 16-bit mono PCM, a numpy ``int16`` array of
160 samples (``frame.tobytes()`` gives native-endian bytes). Anything that produces audio is a
:class:`Source` (``read_frame() -> ndarray | None``, None when finished); anything that consumes it is
a :class:`Sink` (``write_frame(frame)``, must not block). Devices at other rates convert with
:class:`Resampler` (e.g. ``Resampler(48000, 8000)`` for a headset's microphone).

For the SIP plugin (one :class:`MediaEngine` per engine, started with ``await nursery.start(media.run)``)::

    media = MediaEngine(host="127.0.0.1", port_range=(20000, 20999))
    leg = media.allocate(codec="PCMU", telephone_event=101, dtmf="auto",
                         on_dtmf=lambda ep, ev: bus.publish("DTMFEnd", **ev.event_fields()))
    sdp_port = leg.local_address[1]              # put this in the SDP
    leg.set_remote(("192.0.2.7", 40000))         # from the peer's SDP (and again on re-INVITE)
    leg.negotiate(codec="PCMA", telephone_event=96)   # after the offer/answer, if it changed
    leg.play(prompt_library.load("welcome", "es").player())    # IVR prompt
    leg.play(ToneSource("ES", "ringback"))       # or tones, or music on hold
    bridge = media.bridge(caller_leg, agent_leg) # relayed packet by packet, no decoding
    bridge.start_recording("var/recordings/ID.wav", stereo=True)   # caller left, agent right
    leg.receive_info_dtmf("5", 160)              # a digit that came in a SIP INFO
    leg.send_dtmf("123#")                        # with the leg's method (RFC 4733 or in-band)
    media.release(leg)                           # at BYE

Symmetric RTP: each leg sends to the address its media really comes from; the first source address
latches, later strangers are ignored (counted) until ``set_remote`` is called again.

For voice modems and headsets (PCM devices): join a conference with the device's own Source (what the
line says) and Sink (what it should play)::

    room = media.conference()
    room.join("caller", modem_source, modem_sink)            # any Source/Sink pair
    room.join_endpoint("agent", agent_leg)                   # an RTP leg
    room.join_endpoint("supervisor", sup_leg, Role.WHISPER, whisper_to="agent")
    room.set_role("supervisor", "barge")

Sans-IO parts (no trio, time is an argument) can be used on their own: :class:`RtpPacket`,
:func:`parse_rtcp`, :class:`RtpSession`, :class:`JitterBuffer`, :class:`Rfc4733Receiver`,
:class:`InbandDtmfDetector`, :class:`Conference`, :class:`VoiceActivityDetector`.
"""

from __future__ import annotations

from ._audio import FRAME_SAMPLES, FRAME_SECONDS, SAMPLE_RATE, Resampler, Sink, Source, resample, silence, to_frames
from ._dtmf import (
    DTMF_FREQUENCIES,
    Direction,
    DtmfEvent,
    DtmfMethod,
    DtmfSource,
    Rfc4733Receiver,
    dtmf_tone,
    rfc4733_packets,
)
from ._endpoint import RtpEndpoint
from ._bridge import Bridge, ConferenceRoom
from ._engine import MediaEngine
from ._errors import (
    MalformedPacket,
    MediaError,
    MediaUsageError,
    PromptFormatError,
    PromptNotFoundError,
    TtsUnavailableError,
)
from ._g711 import decode_alaw, decode_ulaw, encode_alaw, encode_ulaw
from ._inband import InbandDtmfDetector
from ._jitter import JitterBuffer
from ._levels import VoiceActivityDetector, frame_dbfs
from ._mixer import Conference, Role
from ._playback import MusicOnHold, Prompt, PromptLibrary, PromptPlayer, TextToSpeech, load_prompt
from ._recording import Recording, apply_retention
from ._rtp import RtcpBye, RtcpReceiverReport, RtcpReportBlock, RtcpSenderReport, RtpPacket, parse_rtcp
from ._session import RtpSession
from ._tones import TONES, ToneSource
from ._wav import load_wav_8k

__all__ = [
    "FRAME_SAMPLES",
    "FRAME_SECONDS",
    "SAMPLE_RATE",
    "DTMF_FREQUENCIES",
    "TONES",
    "Bridge",
    "Conference",
    "ConferenceRoom",
    "Direction",
    "DtmfEvent",
    "DtmfMethod",
    "DtmfSource",
    "InbandDtmfDetector",
    "JitterBuffer",
    "MalformedPacket",
    "MediaEngine",
    "MediaError",
    "MediaUsageError",
    "MusicOnHold",
    "Prompt",
    "PromptFormatError",
    "PromptLibrary",
    "PromptNotFoundError",
    "PromptPlayer",
    "Recording",
    "Resampler",
    "Rfc4733Receiver",
    "Role",
    "RtcpBye",
    "RtcpReceiverReport",
    "RtcpReportBlock",
    "RtcpSenderReport",
    "RtpEndpoint",
    "RtpPacket",
    "RtpSession",
    "Sink",
    "Source",
    "TextToSpeech",
    "ToneSource",
    "TtsUnavailableError",
    "VoiceActivityDetector",
    "apply_retention",
    "decode_alaw",
    "decode_ulaw",
    "dtmf_tone",
    "encode_alaw",
    "encode_ulaw",
    "frame_dbfs",
    "load_prompt",
    "load_wav_8k",
    "parse_rtcp",
    "resample",
    "rfc4733_packets",
    "silence",
    "to_frames",
]
