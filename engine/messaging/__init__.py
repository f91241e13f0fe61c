"""What messaging channels (SMS, email, chat) share: conversations, the outbox, opt-outs, routing glue.

Plugins never import each other, so this layer lives in the engine. It is channel-neutral: a plugin
records what it received with :class:`MessageStore`, turns it into an interaction with
:class:`InteractionBinder`, and delivers what agents write with an :class:`Outbox` it runs.
"""

from __future__ import annotations

from ._binder import InteractionBinder
from ._messages import InboundResult, MessageStore, OutboundMessage, new_id
from ._outbox import Deliver, Outbox
from ._replies import ConversationReplies
from ._retry import DeliveryError, RetryPolicy
from ._schema import MIGRATIONS, add_migrations

__all__ = [
    "MIGRATIONS",
    "ConversationReplies",
    "Deliver",
    "DeliveryError",
    "InboundResult",
    "InteractionBinder",
    "MessageStore",
    "OutboundMessage",
    "Outbox",
    "RetryPolicy",
    "add_migrations",
    "new_id",
]
