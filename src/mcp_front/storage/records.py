"""`JSONRecord`: a dataclass kept in a `Store` as compact JSON."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Self

__all__ = ["JSONRecord"]


class JSONRecord:
    """Mixed into a frozen dataclass of JSON-friendly fields: `to_bytes` and `from_bytes`."""

    __slots__ = ()

    def to_bytes(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), separators=(",", ":")).encode()  # type: ignore[call-overload]

    @classmethod
    def from_bytes(cls, raw: bytes) -> Self:
        data: dict[str, Any] = json.loads(raw)
        return cls(**data)
