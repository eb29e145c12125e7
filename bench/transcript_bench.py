"""Benchmark: transcript real-time factor and word error rate on narrated simulated captures.

For each simulated task, its narration is spoken by espeak-ng (voice and rate of
``capture.narration``), repeated to fill the clip, and muxed as AAC into a tiny synthetic
video. Timed, median of 3 runs after an untimed warm-up (model loaded, file cached):
  (a) decoding the audio to 16 kHz mono PCM (``extract_audio``, one ffmpeg process);
  (b) recognition alone (``transcribe_segment`` on that PCM, the configured engine).
Reported: the real-time factor (processing seconds / audio seconds) of (b) and of (a)+(b),
the one-off model load, and the word error rate against the spoken text. Then, on one narrated
720p segment, the derivative pass with transcript and labels against the pass without them
(``bench.derivative_pass_bench``: ratio and the transcript's share).

    python -m bench.transcript_bench [--quick]     prints the markdown section
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import derivative_pass_bench
from bench.common import WORK_DIR, Spread, Target, log, md_table
from robotrace_assets.capture.media import VideoSpec, encode_synthetic_video
from robotrace_assets.capture.narration import (
    NARRATION_RATE_WPM,
    NARRATION_VOICE,
    narration_phrases,
    speak,
)
from robotrace_assets.capture.simulator import TASKS
from robotrace_assets.derivatives.transcript import (
    AudioPcm,
    configured_engine,
    extract_audio,
    transcribe_segment,
    word_error_rate,
)

FULL_SECONDS = 60.0
QUICK_SECONDS = 7.5
REPEATS = 3
WER_TARGET = 0.6  # the bound the transcript tests hold espeak-ng speech to
RTF_TARGET = 1.0  # keep up with capture: faster than real time


def _narrated_clip(
    task: str, steps: tuple[str, ...], seconds: float, root: Path
) -> tuple[Path, str]:
    """A clip whose audio is the task's narration, repeated while it fits in ``seconds``."""
    sentence = ", ".join(narration_phrases(task, steps))
    wav = root / f"{task}.wav"
    text = sentence
    while speak(f"{text}. {sentence}", wav) <= seconds:
        text = f"{text}. {sentence}"
    speak(text, wav)
    spec = VideoSpec(seconds=seconds, fps=10, width=64, height=48, codec="h264", audio_wav=wav)
    return encode_synthetic_video(root / f"{task}.mp4", spec).path, text


def _timed(action: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    value = action()
    return time.perf_counter() - started, value


def _cpu_timed(action: Any) -> tuple[float, float, Any]:
    """(wall s, this process's CPU s, value): recognition runs in-process on one thread, so
    its CPU time is the figure a busy machine does not inflate."""
    cpu = time.process_time()
    wall, value = _timed(action)
    return wall, time.process_time() - cpu, value


def _measure(path: Path, text: str) -> dict[str, Any]:
    source = str(path)
    audio = extract_audio(source)  # untimed warm-up: page cache, ffmpeg binary
    if not isinstance(audio, AudioPcm):
        raise RuntimeError(f"{path.name} has no audio stream")
    result = transcribe_segment(audio)
    decode_s: list[float] = []
    recognize_s: list[float] = []
    recognize_cpu_s: list[float] = []
    for repeat in range(REPEATS):
        seconds, pcm = _timed(lambda: extract_audio(source))
        decode_s.append(seconds)
        seconds, cpu_s, result = _cpu_timed(lambda pcm=pcm: transcribe_segment(pcm))
        recognize_s.append(seconds)
        recognize_cpu_s.append(cpu_s)
        log(f"transcript: {path.stem} #{repeat + 1}: {decode_s[-1]:.2f}+{recognize_s[-1]:.2f}s")
    return {
        "audio_s": audio.duration_s,
        "words": len(text.replace(",", " ").replace(".", " ").split()),
        "decode_s": decode_s,
        "recognize_s": recognize_s,
        "recognize_cpu_s": recognize_cpu_s,
        "wer": word_error_rate(text, result.text),
        "engine": f"{result.engine} {result.engine_version}",
        "model": result.model,
    }


def run(quick: bool, workdir: Path | None = None) -> dict[str, Any]:
    seconds = QUICK_SECONDS if quick else FULL_SECONDS
    base = workdir or WORK_DIR
    base.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="transcript-", dir=base))
    # The first recognition loads the model: a tenth of a second of silence times that.
    silence = AudioPcm(bytes(3200), 16_000, "pcm_s16le")
    load_s, _ = _timed(lambda: transcribe_segment(silence, engine=configured_engine()))
    try:
        clips = {}
        for task, steps in TASKS:
            path, text = _narrated_clip(task, steps, seconds, root)
            clips[task] = _measure(path, text)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    derivative_pass = derivative_pass_bench.run(quick, base)
    for clip in clips.values():
        decode, recognize = Spread.of(clip["decode_s"]), Spread.of(clip["recognize_s"])
        clip["rtf_recognize"] = recognize.median / clip["audio_s"]
        clip["rtf_total"] = (decode.median + recognize.median) / clip["audio_s"]
        clip["rtf_cpu"] = Spread.of(clip["recognize_cpu_s"]).median / clip["audio_s"]
    return {
        "quick": quick,
        "repeats": REPEATS,
        "cores": os.cpu_count(),
        "seconds": seconds,
        "voice": f"{NARRATION_VOICE} at {NARRATION_RATE_WPM} wpm",
        "load_s": load_s,
        "clips": clips,
        "max_rtf_total": max(c["rtf_total"] for c in clips.values()),
        "max_wer": max(c["wer"] for c in clips.values()),
        "derivative_pass": derivative_pass,
    }


def markdown(result: dict[str, Any]) -> str:
    rows = []
    for task, clip in result["clips"].items():
        rows.append(
            (
                task,
                f"{clip['audio_s']:.1f}",
                clip["words"],
                Spread.of(clip["decode_s"]).fmt(2),
                Spread.of(clip["recognize_s"]).fmt(2),
                f"{clip['rtf_recognize']:.2f}",
                f"{clip['rtf_total']:.2f}",
                f"{clip['rtf_cpu']:.2f}",
                f"{clip['wer']:.2f}",
            )
        )
    any_clip = next(iter(result["clips"].values()))
    headers = ["task", "audio s", "words", "decode s", "recognize s", "RTF asr", "RTF all"]
    headers += ["RTF asr CPU", "WER"]
    return "\n".join(
        [
            "## Transcript: real-time factor, word error rate, share of the derivative pass",
            "",
            f"Narration by espeak-ng ({result['voice']}) repeated over {result['seconds']:g} s "
            f"clips, AAC in MP4, transcribed by {any_clip['engine']} ({any_clip['model']}). "
            f"Median (min-max) of {result['repeats']} runs after a warm-up, "
            f"{result['cores']} cores; the model loads once in {result['load_s']:.2f} s.",
            "",
            md_table(headers, rows),
            "",
            "RTF = processing seconds / audio seconds (below 1: faster than real time); "
            "'all' adds decoding the audio from the file; 'CPU' counts the recognizing "
            "process's CPU seconds instead of wall time (what a busy machine does not inflate).",
            "",
            derivative_pass_bench.markdown(result["derivative_pass"]),
        ]
    )


def targets(result: dict[str, Any]) -> list[Target]:
    rtf, wer = result["max_rtf_total"], result["max_wer"]
    return [
        Target(
            "transcript",
            f"{result['seconds']:g} s narrated clips",
            "real-time factor, decode + ASR",
            f"< {RTF_TARGET:g}",
            f"{rtf:.2f}",
            rtf < RTF_TARGET,
            f"{rtf / RTF_TARGET:.1f}x the target",
        ),
        Target(
            "transcript",
            "espeak-ng narration",
            "word error rate (worst task)",
            f"< {WER_TARGET:g}",
            f"{wer:.2f}",
            wer < WER_TARGET,
            f"{wer - WER_TARGET:+.2f}",
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_SECONDS:g} s clips, 2 pass repetitions"
    )
    result = run(parser.parse_args().quick)
    print(markdown(result))
    print()
    for target in targets(result):
        print(f"- {target.measure}: {target.measured} (target {target.target}): {target.result()}")


if __name__ == "__main__":
    main()
