"""Replying to, closing and resuming conversations: the same for every messaging channel on this layer.

A channel keeps ``messages`` (:class:`MessageStore`), ``binder`` (:class:`InteractionBinder`) and
``outbox`` (:class:`Outbox`); mixing :class:`ConversationReplies` in gives it ``send_message``,
``mark_read`` and ``hangup``, and :meth:`ConversationReplies.resume` for start-up. What differs per channel stays in the channel: :meth:`check_reply` refuses a reply its
medium cannot carry (SMS length, an unconfigured mailbox), delivery itself is the outbox's callback.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import trio

    from .._model import Interaction
    from ._binder import InteractionBinder
    from ._messages import MessageStore
    from ._outbox import Outbox


class ConversationReplies:
    messages: MessageStore
    binder: InteractionBinder
    outbox: Outbox
    engine: Any
    #: set by :meth:`engine_started_nowait` (the plugin's ``centralita_engine_started`` hook)
    engine_started: trio.Event

    def engine_started_nowait(self) -> None:
        self.engine_started.set()

    def restored_attributes(self, conversation: Mapping[str, Any]) -> dict[str, Any]:
        """Interaction attributes of a conversation picked up again after a restart (e.g. its subject)."""
        return {}

    async def resume(self, nursery: trio.Nursery, *, reoffer_after: float) -> None:
        """Once the engine takes interactions: conversations open before a restart wait in their queue
        again (nothing is lost), and ones left unanswered ``reoffer_after`` s are re-offered (0: never)."""
        if not self.engine.accepting:
            await self.engine_started.wait()
        for conversation in await self.messages.open_conversations():
            if self.binder.interaction_for(conversation["id"]) is None:
                await self.binder.inbound(conversation["id"], customer=conversation["customer"],
                                          address=conversation["address"],
                                          attributes={**self.restored_attributes(conversation), "restored": True})
        if reoffer_after > 0:
            nursery.start_soon(self.binder.serve_reoffers, reoffer_after)

    def check_reply(self, text: str) -> None:
        """Raise ``ValueError`` (the API's 409, with the reason) for a reply this channel cannot send."""

    async def send_message(self, interaction: Interaction, text: str) -> str:
        """Store the agent's reply for the outbox (durable before this returns) and wake it."""
        self.check_reply(text)
        conversation = self.binder.conversation_of(interaction)
        message = await self.messages.queue_outbound(conversation, text, meta={"interaction": interaction.id})
        self.binder.replied(conversation)
        self.outbox.wake_nowait()
        return message

    async def mark_read(self, interaction: Interaction) -> int:
        """The agent opened the conversation (``POST /api/v1/interactions/{id}/read``): every customer
        message in it so far is ``read``. Returns how many changed."""
        conversation = interaction.attributes.get("conversation")
        if not isinstance(conversation, str):
            # ValueError: the API answers it as a refused action, with this reason
            raise ValueError(f"interaction {interaction.id} has no conversation to read")  # noqa: TRY004
        return await self.messages.mark_read(conversation, "inbound")

    async def hangup(self, interaction: Interaction, cause: str = "normal") -> None:
        """The agent closed the interaction: the conversation is done until the customer writes again."""
        conversation = interaction.attributes.get("conversation")
        if isinstance(conversation, str):
            await self.messages.close(conversation)
