class SSOError(Exception):
    """A failed single sign-on. `message` is safe to show the person; `reason`
    is a short machine-readable code for the audit trail."""

    def __init__(self, message: str, reason: str = "error"):
        super().__init__(message)
        self.message = message
        self.reason = reason
