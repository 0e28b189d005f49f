"""Encoding a live stream piece by piece, as its audio arrives, into the formats a stream offers.

Raw PCM and WAV are libsndfile's 16-bit conversion of each piece, the same one the stored files
get, so at the stored rate a stream carries the stored file's very samples. A WAV stream opens
with a header of unknown length (0xFFFFFFFF, as streaming players expect), since its length is
not known until the last piece. MP3, Opus (in Ogg) and AAC (ADTS) go through PyAV, which emits
each packet as soon as the codec makes it.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import soundfile as sf
import soxr

# Format -> (PyAV container, codec); pcm and wav need no codec.
CODECS = {"mp3": ("mp3", "libmp3lame"), "opus": ("ogg", "libopus"), "aac": ("adts", "aac")}
STREAM_FORMATS = ("pcm", "wav", *CODECS)
UNKNOWN = 0xFFFFFFFF
# Ogg holds packets for a second before it writes a page: a page every 60 ms keeps Opus live.
MUXER_OPTIONS = {"ogg": {"page_duration": "60000"}}


def wav_header(rate: int) -> bytes:
    """A 16-bit mono WAV header whose sizes say "unknown": libsndfile cannot write one."""
    fmt = struct.pack("<HHIIHH", 1, 1, rate, rate * 2, 2, 16)
    return (
        b"RIFF"
        + struct.pack("<I", UNKNOWN)
        + b"WAVEfmt "
        + struct.pack("<I", len(fmt))
        + fmt
        + b"data"
        + (struct.pack("<I", UNKNOWN))
    )


def pcm16(samples: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="RAW", subtype="PCM_16", endian="LITTLE")
    return buf.getvalue()


class _Sink(io.RawIOBase):
    """Where PyAV writes: what it wrote since the last take. Not seekable, so no muxer goes
    back to patch a header it wrote earlier."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]  # io's buffer type, which PyAV hands bytes
        self.data += b
        return len(b)

    def take(self) -> bytes:
        out = bytes(self.data)
        self.data.clear()
        return out


class StreamEncoder:
    """`feed` a stream's pieces (mono float32 at `in_rate`) in order, then `close`; each returns
    the bytes ready to send, at `out_rate` (a rate the format's codec takes)."""

    def __init__(self, fmt: str, in_rate: int, out_rate: int) -> None:
        if fmt not in STREAM_FORMATS:
            raise ValueError(f"format {fmt!r} cannot be streamed; use one of {', '.join(STREAM_FORMATS)}")
        self.fmt, self.rate = fmt, out_rate
        self.resampler = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32") if in_rate != out_rate else None
        self.head = wav_header(out_rate) if fmt == "wav" else b""
        self.sink: _Sink | None = None
        if fmt in CODECS:
            # Here, not at the top: a process that streams PCM and WAV alone runs without PyAV,
            # as codec.py's AAC does (a GPU host whose wheels travel with each call has no room for it).
            import av

            container, codec = CODECS[fmt]
            self.sink = _Sink()
            self.out = av.open(
                self.sink, "w", format=container, options={"flush_packets": "1", **MUXER_OPTIONS.get(container, {})}
            )
            stream = self.out.add_stream(codec, rate=out_rate)
            assert isinstance(stream, av.AudioStream)
            stream.layout = "mono"
            self.stream = stream

    def feed(self, samples: np.ndarray, last: bool = False) -> bytes:
        samples = np.clip(samples, -1.0, 1.0).astype(np.float32)
        if self.resampler is not None:
            samples = self.resampler.resample_chunk(samples, last=last)
        out, self.head = self.head, b""
        if self.sink is None:
            return out + pcm16(samples, self.rate)
        if len(samples):
            import av

            frame = av.AudioFrame.from_ndarray(samples[None, :], format="fltp", layout="mono")
            frame.sample_rate = self.rate
            for packet in self.stream.encode(frame):
                self.out.mux(packet)
        if last:
            for packet in self.stream.encode(None):
                self.out.mux(packet)
            self.out.close()
        return out + self.sink.take()

    def close(self) -> bytes:
        """What the codec and resampler still hold, and the container's end."""
        return self.feed(np.zeros(0, dtype=np.float32), last=True)
