"""Exceptions the toolkit raises on bad input.

Every error is a :class:`KwsError` so that a command-line front end can catch one type
and print ``str(e)``, which is a single line saying what is wrong and what to do.
The concrete classes also derive from :class:`ValueError` because each one reports a
bad value handed in by the caller (text, a model file, audio), not a bug.
"""


class KwsError(Exception):
    """Base of every error the toolkit raises on bad input; str(e) is one line saying what is wrong and what to do."""


class PronunciationError(KwsError, ValueError):
    """The text of a keyword cannot be turned into phones (wrong script, empty, too long, ...)."""


class ModelFormatError(KwsError, ValueError):
    """A keyword model file is malformed, truncated or built for another phone set."""


class AudioError(KwsError, ValueError):
    """Audio input has the wrong format, rate or channel count, or cannot be read."""


class DeviceError(KwsError):
    """A device on a serial link (kws.device_link) does not answer, answers garbage, drops
    the link or refuses a command. Not a ValueError: the fault is usually the link or the
    device's state, not a value the caller passed."""
