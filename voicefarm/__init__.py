"""voicefarm: a distributed text-to-speech synthesis farm."""

__version__ = "0.1.0"
