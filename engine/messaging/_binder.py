"""Ties conversations to engine interactions: one live interaction per open conversation.

A first message (or the first after the previous interaction ended) creates an interaction, routed by
``[[routes]] match`` = the address the message was sent to, and hands it to the routing core. A
follow-up message while the interaction is live only publishes ``MessageReceived`` for it.
"""

from __future__ import annotations

import inspect
import logging
from typing import TYPE_CHECKING, Any

import trio

from .._model import Contact, Direction, Interaction, InteractionKind, InteractionState

if TYPE_CHECKING:
    from .._engine import Engine

log = logging.getLogger("centralita.messaging")


class InteractionBinder:
    def __init__(self, engine: Engine, channel: str, kind: InteractionKind, *, contact_by: str | None = None,
                 crm_timeout: float = 2.0) -> None:
        self.engine = engine
        self.channel = channel
        self.kind = kind
        #: ``"phone"`` or ``"email"``: look the customer up in the CRM backends when a conversation starts.
        self.contact_by = contact_by
        self.crm_timeout = crm_timeout
        self.live: dict[str, Interaction] = {}
        #: conversation -> when its oldest unanswered customer message arrived (trio clock)
        self.waiting_since: dict[str, float] = {}
        self.reoffers = 0

    async def lookup_contact(self, customer: str) -> Contact | None:
        """The customer's CRM contact (first backend that knows them), within ``crm_timeout`` in all."""
        if self.contact_by is None or not getattr(self.engine, "crm", None):
            return None
        with trio.move_on_after(self.crm_timeout):
            for name, backend in list(self.engine.crm.items()):
                try:
                    contact = await backend.lookup(**{self.contact_by: customer})
                except Exception:
                    log.warning("%s: CRM %s lookup failed", self.channel, name, exc_info=True)
                    continue
                if contact is not None:
                    return contact
        return None

    def interaction_for(self, conversation: str) -> Interaction | None:
        interaction = self.live.get(conversation)
        if interaction is not None and interaction.state is InteractionState.ENDED:
            del self.live[conversation]
            return None
        return interaction

    @staticmethod
    def conversation_of(interaction: Interaction) -> str:
        conversation = interaction.attributes.get("conversation")
        if not isinstance(conversation, str):
            raise ValueError(f"interaction {interaction.id} has no conversation")  # noqa: TRY004 (API maps ValueError to 409)
        return conversation

    async def inbound(
        self,
        conversation: str,
        *,
        customer: str,
        address: str,
        caller_name: str = "",
        message: str = "",
        attributes: dict[str, Any] | None = None,
    ) -> Interaction | None:
        """A message arrived in ``conversation``: return its live interaction (creating and routing one)."""
        self.waiting_since.setdefault(conversation, trio.current_time())
        current = self.interaction_for(conversation)
        if current is not None:
            self.engine.bus.publish(
                "MessageReceived", interaction=current.id, Channel=self.channel, Kind=self.kind.value,
                CallerIDNum=customer, CallerIDName=caller_name, Exten=address, Message=message,
            )
            return current
        if not self.engine.accepting:
            return None  # recorded in the store; picked up again at the next start
        attributes = dict(attributes or {})
        contact = await self.lookup_contact(customer)
        if contact is not None:
            attributes.update(contact_id=contact.id, contact_name=contact.name, segments=list(contact.segments))
            caller_name = caller_name or contact.name
        current = self.interaction_for(conversation)  # a message may have raced us during the lookup
        if current is not None:
            return current
        interaction = self.engine.new_interaction(
            self.kind, Direction.INBOUND, from_=customer, to=address, channel=self.channel,
            caller_name=caller_name, attributes={"conversation": conversation, **(attributes or {})},
            message=message or None,
        )
        self.live[conversation] = interaction
        await self.route(interaction, address)
        return interaction

    def replied(self, conversation: str) -> None:
        """An agent answered: the conversation no longer waits."""
        self.waiting_since.pop(conversation, None)

    def overdue(self, now: float, after: float) -> list[Interaction]:
        """Active interactions whose customer has waited more than ``after`` seconds for an answer (pure)."""
        out = []
        for conversation, since in list(self.waiting_since.items()):
            interaction = self.interaction_for(conversation)
            if interaction is None:
                self.waiting_since.pop(conversation, None)
            elif interaction.state is InteractionState.ACTIVE and now - since >= after:
                out.append(interaction)
        return out

    async def serve_reoffers(self, after: float, *, check_every: float = 1.0) -> None:
        """Give a conversation back to its queue (offered to the next agent) when the agent who has it
        leaves the customer without an answer for ``after`` seconds."""
        while True:
            await trio.sleep(min(check_every, after / 2))
            for interaction in self.overdue(trio.current_time(), after):
                conversation = self.conversation_of(interaction)
                queue = interaction.queue
                if not queue or queue.startswith("agent:"):
                    continue  # a direct route to one agent has nobody else to go to
                log.info("%s: %s unanswered by %s for %.1fs; offering it again in %s",
                         self.channel, interaction.id, interaction.agent, after, queue)
                self.waiting_since[conversation] = trio.current_time()
                try:
                    await self.engine.interaction_action(interaction.id, "transfer", {"queue": queue})
                except Exception as exc:  # noqa: BLE001 (a refused re-offer must not stop the channel)
                    log.warning("%s: could not re-offer %s: %s: %s", self.channel, interaction.id, type(exc).__name__, exc)
                    continue
                self.reoffers += 1
                interaction.attributes["reoffered"] = int(interaction.attributes.get("reoffered", 0)) + 1

    async def route(self, interaction: Interaction, address: str) -> None:
        target = self.engine.find_route(address)
        if target is None:
            log.warning("%s: no [[routes]] entry matches %r; interaction %s waits unrouted", self.channel, address, interaction.id)
            return
        # The routing core's entry point: ``Engine.deliver(interaction, target)`` (queue, agent or flow).
        deliver = getattr(self.engine, "deliver", None) or getattr(self.engine, "enqueue", None)
        if deliver is not None:
            result = deliver(interaction, target)
            if inspect.isawaitable(result):
                await result
            return
        # Until the routing core takes messages, record where the interaction is waiting.
        if target.kind == "queue":
            interaction.queue = target.name
            interaction.transition(InteractionState.QUEUED)
            self.engine.bus.publish("QueueCallerJoin", interaction=interaction.id, Queue=target.name, CallerIDNum=interaction.from_)
        elif target.kind == "agent":
            interaction.agent = target.name
            interaction.transition(InteractionState.OFFERED)
