"""Open-vocabulary keyword spotting: type a wake word, get a detector.

Public API:
    pronounce(text, lang)  -> Pronunciation      text to phones (g2pk / CMUdict)
    enroll(texts[, lang])  -> Enrollment         text to a compiled keyword model (lang from the script)
    KeywordModel                                  the .kwm file (load/save/to_bytes)
    Detector(model)                               audio (any chunk size) -> detections
    KeywordDecoder(model)                         streaming C decoder over posteriors
"""

from .errors import AudioError, KwsError, ModelFormatError, PronunciationError
from .phonesets import ENGLISH, KOREAN, PhoneSet, get_phone_set
from .pronunciation import Pronunciation, pronounce
from .model_file import KeywordModel
from .enroll import Enrollment, enroll


def __getattr__(name: str):
    # The decoder pulls in the compiled extension and the detector the TFLite runtime;
    # load them on first use so that pronunciation and model-file tools work (and start
    # fast) without them.
    if name in ("Detection", "KeywordDecoder"):
        from . import decoder
        return getattr(decoder, name)
    if name in ("Detector", "detect_files"):
        from . import detector
        return getattr(detector, name)
    raise AttributeError(f"module 'kws' has no attribute {name!r}")

__version__ = "0.1.0"

__all__ = [
    "AudioError", "KwsError", "ModelFormatError", "PronunciationError",
    "ENGLISH", "KOREAN", "PhoneSet", "get_phone_set",
    "Pronunciation", "pronounce", "KeywordModel", "Enrollment", "enroll",
    "Detection", "KeywordDecoder", "Detector", "detect_files",
]
