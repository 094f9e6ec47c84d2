"""The one exception type for failures a user can act on; the CLI prints its message as one line."""


class BenchmarkError(Exception):
    """A user-facing failure (bad input, bad usage, a model that cannot be loaded).

    The message must be one line a user can act on; the CLI exits with code 2.
    """
