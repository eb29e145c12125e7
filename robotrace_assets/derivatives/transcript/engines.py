"""Offline speech recognition engines behind one interface (no Dagster here).

- ``pocketsphinx`` (default): its English acoustic and language models ship inside the wheel,
  so it works on any machine the project installs on, with no download at run time.
- ``faster-whisper``: far more accurate, chosen by configuration, with a CTranslate2 Whisper
  model directory the user provides (hubs are never contacted). The package is not a project
  dependency: it is imported only when selected, and its absence is a clear error.

Every engine returns words with times in seconds from the start of the audio and a confidence
in [0, 1], plus the engine and model names and versions the transcript records.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from robotrace_assets.derivatives.transcript.audio import (
    ASR_SAMPLE_RATE,
    AudioPcm,
    TranscriptError,
)
from robotrace_assets.settings import transcript_engine

__all__ = [
    "ENGINES",
    "FasterWhisperEngine",
    "PocketSphinxEngine",
    "Recognition",
    "TranscriptEngine",
    "TranscriptEngineError",
    "Word",
    "configured_engine",
    "engine_for",
]

POCKETSPHINX = "pocketsphinx"
FASTER_WHISPER = "faster-whisper"
ENGINES = (POCKETSPHINX, FASTER_WHISPER)


class TranscriptEngineError(TranscriptError):
    """The configured engine cannot run here (unknown, not installed, no model)."""


@dataclass(frozen=True)
class Word:
    word: str
    start_s: float
    end_s: float
    confidence: float  # in [0, 1]


@dataclass(frozen=True)
class Recognition:
    words: tuple[Word, ...]
    engine: str
    engine_version: str
    model: str
    language: str


class TranscriptEngine(Protocol):
    name: str

    def recognize(self, audio: AudioPcm) -> Recognition: ...


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _is_filler(token: str) -> bool:
    # <s>, </s>, <sil> and [NOISE]-style tokens mark silence and noise, not speech.
    return not token or token[0] in "<[+"


def _dictionary_word(token: str) -> str:
    # Alternative pronunciations come back as "word(2)": the word is the same.
    return token.split("(", 1)[0] if token.endswith(")") else token


class PocketSphinxEngine:
    """PocketSphinx with the US English model bundled in its wheel."""

    name = POCKETSPHINX
    language = "en-US"

    def __init__(self) -> None:
        # One decoder per engine (loading the model takes a second); decoders are not
        # thread-safe, so recognitions on one engine take turns.
        self._lock = threading.Lock()
        self._decoder: Any = None

    def _get_decoder(self) -> Any:
        if self._decoder is None:
            import pocketsphinx

            self._decoder = pocketsphinx.Decoder(loglevel="FATAL")
        return self._decoder

    @staticmethod
    def _utterance(decoder: Any, pcm: bytes) -> None:
        # The feature front end (cepstral mean and its history) carries over between
        # utterances and nudges the scores; resetting it makes each transcript depend on its
        # own audio only, so the same segment always yields the same bytes.
        decoder.reinit_feat()
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()

    # The US English acoustic model, language model and dictionary inside the wheel.
    model = "cmusphinx-en-us (bundled with pocketsphinx)"

    def recognize(self, audio: AudioPcm) -> Recognition:
        if audio.sample_rate != ASR_SAMPLE_RATE:
            raise ValueError(f"pocketsphinx needs {ASR_SAMPLE_RATE} Hz audio")
        with self._lock:
            decoder = self._get_decoder()
            frame_rate = float(decoder.config["frate"])
            self._utterance(decoder, audio.pcm)
            words = tuple(
                Word(
                    word=_dictionary_word(seg.word),
                    start_s=round(seg.start_frame / frame_rate, 3),
                    end_s=round((seg.end_frame + 1) / frame_rate, 3),
                    confidence=round(min(1.0, max(0.0, float(seg.prob))), 4),
                )
                for seg in decoder.seg()
                if not _is_filler(seg.word)
            )
        return Recognition(words, self.name, _version("pocketsphinx"), self.model, self.language)


class FasterWhisperEngine:
    """faster-whisper (CTranslate2) with a Whisper model directory the user provides."""

    name = FASTER_WHISPER

    def __init__(self, model_dir: Path | None, language: str = "en") -> None:
        if model_dir is None:
            raise TranscriptEngineError(
                "faster-whisper needs a model directory: set ROBOTRACE_TRANSCRIPT_MODEL_DIR to a "
                "CTranslate2 Whisper model (a folder holding model.bin)"
            )
        if not (Path(model_dir) / "model.bin").is_file():
            raise TranscriptEngineError(
                f"no model.bin in {model_dir}: ROBOTRACE_TRANSCRIPT_MODEL_DIR must be a "
                "CTranslate2 Whisper model directory"
            )
        try:
            module = importlib.import_module("faster_whisper")
        except ImportError:
            raise TranscriptEngineError(
                "faster-whisper is not installed (pip install faster-whisper), "
                "or choose ROBOTRACE_TRANSCRIPT_ENGINE=pocketsphinx"
            ) from None
        self.model = Path(model_dir).name
        self.language = language
        self._lock = threading.Lock()
        self._whisper: Any = module.WhisperModel(
            str(model_dir), device="cpu", compute_type="int8", local_files_only=True
        )

    def recognize(self, audio: AudioPcm) -> Recognition:
        if audio.sample_rate != ASR_SAMPLE_RATE:
            raise ValueError(f"faster-whisper needs {ASR_SAMPLE_RATE} Hz audio")
        samples = np.frombuffer(audio.pcm, dtype="<i2").astype(np.float32) / 32768.0
        with self._lock:
            segments, _info = self._whisper.transcribe(
                samples, language=self.language, word_timestamps=True
            )
            words = tuple(
                Word(
                    word=w.word.strip(),
                    start_s=round(float(w.start), 3),
                    end_s=round(float(w.end), 3),
                    confidence=round(float(w.probability), 4),
                )
                for segment in segments
                for w in segment.words or ()
                if w.word.strip()
            )
        version = _version("faster-whisper")
        return Recognition(words, self.name, version, self.model, self.language)


@functools.cache
def engine_for(name: str, model_dir: Path | None = None) -> TranscriptEngine:
    """The engine called ``name`` (one instance per configuration: models load once)."""
    if name == POCKETSPHINX:
        return PocketSphinxEngine()
    if name == FASTER_WHISPER:
        return FasterWhisperEngine(model_dir)
    raise TranscriptEngineError(
        f"unknown transcript engine {name!r}: ROBOTRACE_TRANSCRIPT_ENGINE is one of "
        + ", ".join(ENGINES)
    )


def configured_engine() -> TranscriptEngine:
    """The engine ROBOTRACE_TRANSCRIPT_ENGINE and ROBOTRACE_TRANSCRIPT_MODEL_DIR select."""
    name, model_dir = transcript_engine()
    return engine_for(name, model_dir)
