"""Replying to and closing a conversation: the same for every messaging channel built on this layer.

A channel keeps ``messages`` (:class:`MessageStore`), ``binder`` (:class:`InteractionBinder`) and
``outbox`` (:class:`Outbox`); mixing :class:`ConversationReplies` in gives it ``send_message`` and
``hangup``. What differs per channel stays in the channel: :meth:`check_reply` refuses a reply its
medium cannot carry (SMS length, an unconfigured mailbox), delivery itself is the outbox's callback.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .._model import Interaction
    from ._binder import InteractionBinder
    from ._messages import MessageStore
    from ._outbox import Outbox


class ConversationReplies:
    messages: MessageStore
    binder: InteractionBinder
    outbox: Outbox

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

    async def hangup(self, interaction: Interaction, cause: str = "normal") -> None:
        """The agent closed the interaction: the conversation is done until the customer writes again."""
        conversation = interaction.attributes.get("conversation")
        if isinstance(conversation, str):
            await self.messages.close(conversation)
