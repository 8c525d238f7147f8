"""Status enums with a declared transition table.

Every status change goes through `TransitionTable.check`, so an undeclared move is an error value
(`IllegalTransition`) rather than a silent overwrite; property tests walk the table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Generic, TypeVar

from .errors import IllegalTransition

S = TypeVar("S", bound=StrEnum)


class TransitionTable(Generic[S]):
    def __init__(self, kind: str, edges: Mapping[S, Iterable[S]]) -> None:
        self.kind = kind
        self._edges: dict[S, frozenset[S]] = {src: frozenset(dst) for src, dst in edges.items()}
        self.terminal: frozenset[S] = frozenset(s for s, dst in self._edges.items() if not dst)

    def allowed(self, current: S, target: S) -> bool:
        return target in self._edges.get(current, frozenset())

    def targets(self, current: S) -> frozenset[S]:
        return self._edges.get(current, frozenset())

    def check(self, ident: str, current: S, target: S, action: str) -> None:
        if not self.allowed(current, target):
            raise IllegalTransition(self.kind, ident, current.value, action)

    def is_terminal(self, status: S) -> bool:
        return status in self.terminal

    def statuses(self) -> list[S]:
        return list(self._edges)
