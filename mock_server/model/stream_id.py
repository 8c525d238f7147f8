"""Redis stream ids (`<ms>-<seq>`) as a value type: parse, encode, order, and the next auto id."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

UINT64_MAX: Final = 2**64 - 1

# Redis copies the argument into a 128-byte buffer and rejects anything longer; the bound also keeps
# int() far from its digit limit on hostile input.
_MAX_TEXT_LEN: Final = 127

# [0-9] rather than \d, which would accept non-ASCII digits such as U+FF11 (fullwidth one)
# that Redis rejects.
_SHAPE: Final = re.compile(r"([0-9]+)-([0-9]+)")


class InvalidStreamId(ValueError):
    pass


@dataclass(frozen=True, order=True, slots=True)
class StreamId:
    ms: int
    seq: int

    def __post_init__(self) -> None:
        for name, value in (("ms", self.ms), ("seq", self.seq)):
            # bool is an int subclass; True-0 would compare and hash like 1-0 and hide a bug.
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"stream id {name} must be an int, not {type(value).__name__}")
            if not 0 <= value <= UINT64_MAX:
                raise InvalidStreamId(f"stream id {name} must be between 0 and {UINT64_MAX}")

    @classmethod
    def parse(cls, text: str) -> StreamId:
        if len(text) > _MAX_TEXT_LEN:
            raise InvalidStreamId(f"stream id must be at most {_MAX_TEXT_LEN} characters")
        # fullmatch, not `$`, which would let a trailing newline through.
        match = _SHAPE.fullmatch(text)
        if match is None:
            raise InvalidStreamId("stream id must look like <ms>-<seq> with ASCII digits only")
        return cls(int(match[1]), int(match[2]))

    def encode(self) -> str:
        return f"{self.ms}-{self.seq}"

    def next_for(self, now_ms: int) -> StreamId:
        """The id Redis gives the next auto-id entry after this one when its clock reads `now_ms`.

        A clock that stands still or goes back keeps this ms and bumps seq, so ids still increase;
        a full seq carries into ms like Redis's streamIncrID.
        """
        if now_ms > self.ms:
            return StreamId(now_ms, 0)
        if self.seq < UINT64_MAX:
            return StreamId(self.ms, self.seq + 1)
        if self.ms < UINT64_MAX:
            return StreamId(self.ms + 1, 0)
        raise InvalidStreamId(f"no stream id follows {self.encode()}")


ZERO: Final = StreamId(0, 0)
