"""The one exception type the CLI turns into a clean message and a non-zero exit."""


class BerthError(Exception):
    """An error a person can act on; its message is shown as is, without a traceback."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint
