"""Reading WAV files as 16-bit mono PCM at the rate a speech model expects."""

from __future__ import annotations

import wave
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray


class AudioFormatError(ValueError):
    """A WAV file the speech path cannot use."""


def read_wav_pcm16(path: Path | str, sample_rate: int = 16000) -> bytes:
    """The samples of a PCM WAV file as 16-bit little-endian mono at ``sample_rate``.

    16-bit files are accepted at any rate and channel count: channels are averaged and the
    rate is converted by linear interpolation (good enough for speech recognition; feed
    16 kHz mono files for best results). Other sample widths raise ``AudioFormatError``.
    """
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioFormatError(f"{path}: not a PCM WAV file ({exc})") from exc
    if width != 2:
        raise AudioFormatError(
            f"{path}: {8 * width}-bit samples; convert to 16-bit PCM, e.g. "
            f"`ffmpeg -i in.wav -ac 1 -ar {sample_rate} -sample_fmt s16 out.wav`"
        )
    if channels == 1 and rate == sample_rate:
        return frames
    samples: NDArray[np.floating[Any]] = np.frombuffer(frames, dtype="<i2").astype(np.float32)
    if channels > 1:
        samples = samples[: len(samples) // channels * channels].reshape(-1, channels).mean(axis=1)
    if rate != sample_rate and len(samples):
        count = round(len(samples) * sample_rate / rate)
        positions = np.arange(count, dtype=np.float64) * (rate / sample_rate)
        samples = np.interp(positions, np.arange(len(samples)), samples)
    return np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()
