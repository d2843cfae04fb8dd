"""The errors of a local run (synthesis, the emulator deploy, in-process custom resources)."""


class LocalRunError(RuntimeError):
    """A step of the local drill failed (the message says which and why)."""
