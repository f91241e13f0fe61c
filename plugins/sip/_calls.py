"""Calls (B2BUA): placeholder until the call layer lands."""

from __future__ import annotations

from typing import Any


class CallManager:
    def __init__(self, channel: Any) -> None:
        self.channel = channel

    def statistics(self) -> dict[str, Any]:
        return {}

    async def offer(self, interaction: Any, agent: str, endpoint: str) -> None:
        raise NotImplementedError

    def hangup(self, interaction: Any, cause: str) -> None:
        pass

    async def originate(self, to: str, **kwargs: Any) -> Any:
        raise NotImplementedError
