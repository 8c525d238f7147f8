"""Domain errors, raised by the model and translated to each API's envelope at the HTTP boundary.

    ModelError
    ├── Unauthenticated      no or unknown credentials
    ├── Forbidden            known caller, not allowed (reason: forbidden, trial_expired, ...)
    ├── NotFound             unknown id, or an id of another workspace/tenant/project
    ├── IllegalTransition    the status machine refuses the move (cancel after completion, ...)
    ├── InvalidInput         well-formed request whose content the model rejects (names the field)
    │   └── Unprocessable    a required value is missing where the API says 422 (Strait)
    ├── Conflict             a request that clashes with current state other than by status
    └── Gone                 the resource is finished: nothing is left to read (Strait's 410)

The model never picks HTTP statuses: AUVY renders IllegalTransition as 400, AVA as 409.
"""

from __future__ import annotations


class ModelError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unauthenticated(ModelError):
    pass


class Forbidden(ModelError):
    def __init__(self, message: str, reason: str = "forbidden") -> None:
        super().__init__(message)
        self.reason = reason


class NotFound(ModelError):
    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"{kind} not found")
        self.kind = kind
        self.ident = ident


class IllegalTransition(ModelError):
    def __init__(self, kind: str, ident: str, current: str, action: str) -> None:
        super().__init__(f"cannot {action} {kind} {ident}: it is {current}")
        self.kind = kind
        self.ident = ident
        self.current = current
        self.action = action


class InvalidInput(ModelError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class Conflict(ModelError):
    pass


class Unprocessable(InvalidInput):
    pass


class Gone(ModelError):
    pass
