"""The client's exceptions: Kafka error codes as values, and failures to reach a broker."""

from __future__ import annotations

from streamhouse.protocol.errors import ErrorCode, message, retriable


class ClientError(Exception):
    """Base of everything the client raises on purpose."""


class KafkaError(ClientError):
    """A broker answered with an error code."""

    def __init__(self, error_code: int, detail: str | None = None, *, context: str = "") -> None:
        self.error_code = error_code
        self.detail = detail or message(error_code)
        self.context = context
        prefix = f"{context}: " if context else ""
        super().__init__(f"{prefix}{self.name}: {self.detail}")

    @property
    def name(self) -> str:
        try:
            return ErrorCode(self.error_code).name
        except ValueError:
            return f"ERROR_{self.error_code}"

    @property
    def retriable(self) -> bool:
        return retriable(self.error_code)


class BrokerUnreachable(ClientError):
    """No connection to a broker could be made or kept (refused, closed, timed out)."""


class UnsupportedApi(ClientError):
    """The broker and this client share no version of an API."""


def check(error_code: int, detail: str | None = None, *, context: str = "") -> None:
    """Raise KafkaError unless error_code is NONE."""
    if error_code != ErrorCode.NONE:
        raise KafkaError(error_code, detail, context=context)
