"""What a backend receives and how it reports failure: retryable (try later) vs permanent (give up)."""

from __future__ import annotations

from dataclasses import dataclass, field


class SendError(Exception):
    retryable = False


class RetryableSendError(SendError):
    """Worth another attempt later: timeouts, 5xx, connection refused, throttling."""

    retryable = True


class PermanentSendError(SendError):
    """Will not succeed by retrying: bad number/address, rejected content, no backend."""


@dataclass
class OutgoingMessage:
    notice_id: int
    channel: str
    borrower_id: int
    to: str  # phone, e-mail address, or borrower id for in-app / letter
    subject: str
    body: str
    language: str = "zh-hans"
    extra: dict = field(default_factory=dict)


@dataclass
class SendResult:
    notice_id: int
    provider_ref: str = ""
    error: SendError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class BaseBackend:
    """Override `send` (one message) or `send_messages` (a batch sharing a connection)."""

    def send(self, message: OutgoingMessage) -> str:
        raise NotImplementedError

    def send_messages(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        results = []
        for message in messages:
            try:
                results.append(SendResult(message.notice_id, self.send(message) or ""))
            except SendError as exc:
                results.append(SendResult(message.notice_id, error=exc))
        return results
