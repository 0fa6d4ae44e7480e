"""Domain errors. Services raise them; the delivery layer turns them into responses."""


class DomainError(Exception):
    """A rule of the domain refused the operation. `code` is stable and machine-readable."""

    status = 409
    code = "conflict"

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code


class IllegalTransition(DomainError):
    status = 409
    code = "illegal_transition"


class Conflict(DomainError):
    status = 409
    code = "conflict"


class NotAllowed(DomainError):
    status = 403
    code = "forbidden"


class NotFound(DomainError):
    status = 404
    code = "not_found"


class InvalidInput(DomainError):
    status = 422
    code = "invalid"
