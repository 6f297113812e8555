class ApplicationError(Exception):
    """A business rule refused an operation. Mapped to HTTP 400 / a form error."""

    def __init__(self, message: str, *, code: str = "invalid", field: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field
        self.extra = extra or {}


# The one answer for a user who is not in the caller's location, whether they exist elsewhere
# or not at all: an error must never name (or confirm) a user of another tenant.
NOT_A_MEMBER = "That user is not a member of this location."
