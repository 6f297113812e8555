class ApplicationError(Exception):
    """A business rule refused an operation. Mapped to HTTP 400 / a form error."""

    def __init__(self, message: str, *, code: str = "invalid", field: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.field = field
        self.extra = extra or {}
