"""Ringing a SIP agent for a caller another channel holds (an analog line, a headset).

The engine's ``CrossConnect`` asks the SIP channel to ring the agent (``VoiceChannel.ring_agent``); the
phone is offered an RTP endpoint of the engine's media framework, and once it answers the engine mixes
that endpoint with the other channel's caller. The SIP side is a :class:`~._calls.Call` without a caller
leg, kept in the call table like any other: the agent's BYE ends the interaction (CDR), re-INVITEs
(hold) are answered on our endpoint, and INFO digits reach the engine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine import Interaction
from engine.abc import AgentLeg

from ._calls import Call
from ._media import media_engine
from ._registrar import endpoint_user

if TYPE_CHECKING:
    from ._calls import CallManager

__all__ = ["ring_for"]


async def ring_for(calls: CallManager, interaction: Interaction, agent: str, endpoint: str) -> AgentLeg:
    """Ring every registered contact of ``endpoint``; the first to answer wins (ring-all agents are
    separate offers, so several may share the call entry while they ring)."""
    channel = calls.channel
    user = endpoint_user(endpoint)
    bindings = channel.registrar.contacts(user) if user else []
    if not bindings or media_engine(channel) is None:
        # No phone to ring, or no media framework to carry the audio between the two channels.
        return AgentLeg("failed")
    call = calls.calls.get(interaction.id)
    if call is None:
        call = calls.calls[interaction.id] = Call(interaction)
    elif call.caller is not None:
        return AgentLeg("failed")  # a SIP caller of our own: CallManager.offer handles it
    calls.stats["offers"] += 1
    legs = [calls._ring(call, binding, agent) for binding in bindings]
    engine = calls.engine
    if engine is not None:
        engine.bus.publish(
            "AgentCalled", interaction=interaction.id, Agent=agent, Queue=interaction.queue or "", Endpoint=endpoint
        )
    winner = None
    try:
        await calls._wait_legs(legs)
        winner = next((leg for leg in legs if leg.result == "answered" and leg.media_leg is not None), None)
    finally:
        # Also on cancellation (the offer was withdrawn): stop ringing, give the ports back.
        for leg in legs:
            if leg is not winner:
                calls._hangup_leg(leg)
                if leg.media_leg is not None:
                    leg.media_leg.release()
                    leg.media_leg = None
        call.agents = [leg for leg in call.agents if leg not in legs or leg is winner]
        if not call.agents and calls.calls.get(interaction.id) is call:
            del calls.calls[interaction.id]
    if winner is None or winner.media_leg is None:
        results = {leg.result for leg in legs}
        outcome = "busy" if "busy" in results else "rejected" if "rejected" in results else "no-answer"
        return AgentLeg(outcome)
    calls.stats["offers_answered"] += 1
    winner_endpoint = winner.media_leg.endpoint

    async def hang_up() -> None:
        # The engine ends the call (the caller hung up): BYE to the agent, ports released.
        if calls.calls.get(interaction.id) is call:
            calls._end_call(call, cause="caller")

    return AgentLeg("answered", endpoint=winner_endpoint, on_hangup=hang_up)
