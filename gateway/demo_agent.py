"""The demo's devices: each reads its WebSocket stream in a task and keeps what it opened.

The agent device is the trusted end of the pipeline: it holds the keys, so printing what it
decrypted is the point of the demo. The gateway never sees any of it in the clear after the
edge, and its own logs stay content-free (the demo checks that too).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from gateway.client import DeviceClient, Received
from gateway.envelope import Envelope, Reaction, ReadMarker, Status, Text

__all__ = ["DeviceView", "describe", "kind_of"]


def kind_of(envelope: Envelope) -> str:
    """The content's wire tag (``text``, ``reaction`` …)."""
    return str(type(envelope.content).__struct_config__.tag)


def describe(envelope: Envelope) -> str:
    """One line for a decrypted envelope, as an inbox would show it."""
    content = envelope.content
    if isinstance(content, Text):
        if envelope.direction == "out":  # a colleague's reply, as its author sealed it
            return f"↩ a colleague's reply, queued: “{content.text}”"
        return f"“{content.text}”"
    if isinstance(content, Reaction):
        return "removed a reaction" if content.removed else f"reacted {content.emoji}"
    if isinstance(content, Status):
        if envelope.direction == "out" and content.status == "sent":  # the edge's record
            return f"the edge sent our reply: platform id {envelope.platform_message_id}"
        code = f" ({content.error.code})" if content.error is not None else ""
        return f"status of our reply: {content.status}{code}"
    if isinstance(content, ReadMarker):
        return "read our reply"
    return f"({kind_of(envelope)})"


def _who(envelope: Envelope) -> str:
    sender = envelope.sender
    if sender is None:
        return envelope.conversation.id
    return sender.name or sender.username or sender.id


def _from_customer(envelope: Envelope) -> bool:
    return envelope.direction == "in" and envelope.sender is not None


class DeviceView:
    """``start()`` a task that opens every frame the device receives. With ``show``, a line per
    frame is queued and :meth:`flush` hands the queue to ``show`` — so the demo prints each
    device line right after the webhook that caused it, not wherever the frame interleaves."""

    def __init__(self, name: str, client: DeviceClient, platforms: dict[str, str], *,
                 show: Callable[[str], None] | None = None) -> None:
        self.name = name
        self.client = client
        self.platforms = platforms  # channel id -> platform
        self.show = show
        self.received: list[Received] = []
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lines: list[str] = []
        self.failure: str | None = None
        self._names: dict[str, str] = {}  # conversation id -> the customer, once known

    @property
    def opened(self) -> list[Envelope]:
        return [r.envelope for r in self.received if r.envelope is not None]

    @property
    def unreadable(self) -> int:
        return sum(1 for r in self.received if r.envelope is None)

    def start(self) -> None:
        self._task = asyncio.create_task(self._read(), name=f"demo-device-{self.name}")

    async def _read(self) -> None:
        try:
            async with self.client.stream() as stream:
                async for received in stream:
                    self.received.append(received)
                    envelope = received.envelope
                    if envelope is not None and _from_customer(envelope):
                        self._names[received.conversation_id] = _who(envelope)
                    if self.show is not None:
                        self._lines.append(self.line(received))
                    self._arrived.set()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # shown in the checks, never swallowed silently
            self.failure = type(exc).__name__
            self._arrived.set()

    def line(self, received: Received) -> str:
        platform = self.platforms.get(received.channel_id, received.channel_id)
        if received.envelope is None:
            return f"  ✗ {self.name:<12} {platform:<9} could not open #{received.seq}: " \
                   f"{received.error}"
        envelope = received.envelope
        who = self._names.get(received.conversation_id, _who(envelope))
        return (f"  🔓 {self.name:<12} {platform:<9} {who:<17} "
                f"#{received.seq:<2} {describe(envelope)}")

    def flush(self) -> None:
        lines, self._lines = self._lines, []
        if self.show is not None:
            for line in lines:
                self.show(line)

    async def wait_for(self, count: int, timeout_s: float) -> bool:
        """True once ``count`` frames arrived; False after ``timeout_s`` or a failure."""
        return await self.wait_until(lambda: len(self.received) >= count, timeout_s)

    async def wait_until(self, condition: Callable[[], bool], timeout_s: float) -> bool:
        """True once ``condition()`` holds (checked as frames arrive); False after
        ``timeout_s`` or a failure."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not condition() and self.failure is None:
            left = deadline - loop.time()
            if left <= 0:
                return False
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)
        return condition()

    def find(self, condition: Callable[[Envelope], bool]) -> Received | None:
        """The first frame whose opened envelope meets ``condition``."""
        return next((r for r in self.received
                     if r.envelope is not None and condition(r.envelope)), None)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def in_order(self) -> bool:
        """Per conversation, sequence numbers 1, 2, 3 … with no gap and no repeat."""
        last: dict[str, int] = {}
        for received in self.received:
            if received.seq != last.get(received.conversation_id, 0) + 1:
                return False
            last[received.conversation_id] = received.seq
        return True
