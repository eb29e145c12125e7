"""Benchmark: what the trust-chain pinning costs (budget: at most 5% over unpinned).

Against a private SeaweedFS, for one segment:
  (a) derivatives: make_derivatives from a signed GET URL, unpinned vs pinned (If-Match signed
      into the URL and sent by ffmpeg on every request), on the 1080p30 HEVC segment of the
      derivatives benchmark (--quick: 640x360, 5 s);
  (b) proof: the raw-video proof alone (HEAD, part HEADs, one full read) vs the proof as it now
      runs (plus the media session envelope, the sensor log proven like the video) followed by
      the cross-run guard's HEAD of every proven object; a 1 GiB raw object and a 4 MB sensor
      log (--quick: 64 MiB).
Repeats are interleaved so a noisy neighbour slows both sides; medians are compared.

    python -m bench.pinning_bench [--quick]     prints the markdown section
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.common import WORK_DIR, Spread, Target, log, md_table, private_store
from robotrace_assets import layout
from robotrace_assets.capture.media import VideoSpec, encode_synthetic_video
from robotrace_assets.derivatives.media import make_derivatives
from robotrace_assets.derivatives.profiles import DerivativeProfile
from robotrace_assets.objectstore.client import S3Client, make_client, pin_headers, presign_get
from robotrace_assets.objectstore.multipart import PresignedMultipartUploader
from robotrace_assets.proof import rules
from robotrace_assets.proof.observe import current_objects, observe

FULL_SPEC = VideoSpec(seconds=20.0, fps=30, width=1920, height=1080, codec="hevc", seed=11)
QUICK_SPEC = VideoSpec(seconds=5.0, fps=30, width=640, height=360, codec="hevc", seed=11)
FULL_RAW_BYTES, QUICK_RAW_BYTES = 1024**3, 64 * 1024**2
SENSOR_LOG_BYTES = 4 * 1024**2
PART_SIZE = 64 * 1024**2
TARGET = 1.05  # pinned / unpinned, at most

TENANT = "ten_01KT9WNH809PJX8W9XC34AE1HS"
SESSION = "msess_01KT9WNH809PJX8W9XC34AE1HS"
SEGMENT = "seg_01KT9WNH809PJX8W9XC34AE1HS"


def _median_pair(
    first: Callable[[], object], second: Callable[[], object], repeats: int, what: str
) -> tuple[list[float], list[float]]:
    times: tuple[list[float], list[float]] = ([], [])
    for repeat in range(repeats):
        order = (0, 1) if repeat % 2 == 0 else (1, 0)
        for side in order:
            started = time.perf_counter()
            (first, second)[side]()
            times[side].append(time.perf_counter() - started)
            log(f"pinning: {what} {'pinned' if side else 'unpinned'}: {times[side][-1]:.2f}s")
    return times


def _derivatives(client: S3Client, bucket: str, root: Path, quick: bool) -> dict[str, Any]:
    spec = dataclasses.replace(
        QUICK_SPEC if quick else FULL_SPEC, bitrate_kbps=1_500 if quick else 8_000
    )
    info = encode_synthetic_video(root / "segment.mp4", spec)
    key = f"{layout.RAW}/{TENANT}/{SESSION}/{SEGMENT}.mp4"
    etag = client.put_object(Bucket=bucket, Key=key, Body=info.path.read_bytes())["ETag"]
    profile, hint = DerivativeProfile(), info.duration_s
    plain = presign_get(client, bucket, key, 3600)
    pinned = presign_get(client, bucket, key, 3600, if_match=etag)

    def run(url: str, headers: dict[str, str] | None, out: str) -> None:
        make_derivatives(url, root / out, profile, duration_hint_s=hint, headers=headers)
        shutil.rmtree(root / out)

    run(plain, None, "warmup")
    unpinned, with_pin = _median_pair(
        lambda: run(plain, None, "a"),
        lambda: run(pinned, pin_headers(etag), "b"),
        2 if quick else 5,
        "derivatives",
    )
    return {"segment_mb": info.size_bytes / 1e6, "unpinned_s": unpinned, "pinned_s": with_pin}


def _proof(client: S3Client, bucket: str, root: Path, quick: bool) -> dict[str, Any]:
    size = QUICK_RAW_BYTES if quick else FULL_RAW_BYTES
    raw_key = f"{layout.RAW}/{TENANT}/{SESSION}/{SEGMENT}.mp4"
    sensors_key = f"{layout.RAW}/{TENANT}/{SESSION}/{SEGMENT}.sensors.parquet"
    raw = root / "raw.bin"
    with open(raw, "wb") as out:
        for _ in range(size // (16 * 1024**2)):
            out.write(os.urandom(16 * 1024**2))
    uploader = PresignedMultipartUploader(client, bucket, part_size=PART_SIZE)
    uploader.upload(raw, raw_key, "video/mp4")
    client.put_object(Bucket=bucket, Key=sensors_key, Body=os.urandom(SENSOR_LOG_BYTES))
    session = {"media_session_id": SESSION, "tenant_id": TENANT, "segment_ids": [SEGMENT]}
    client.put_object(
        Bucket=bucket, Key=layout.session_envelope_key(SESSION), Body=json.dumps(session).encode()
    )
    base = rules.Expectation(
        SEGMENT, TENANT, raw_key, size, None, "video/mp4", size // PART_SIZE, PART_SIZE, SESSION
    )
    sensors = rules.ObjectExpectation("sensors", sensors_key, SENSOR_LOG_BYTES, None, None)
    proven = dataclasses.replace(base, objects=(sensors,))

    def now_proof() -> None:
        obs, _ = observe(client, bucket, proven)
        current_objects(client, bucket, rules.proven_pins(proven, obs))  # the guard's HEADs

    unpinned, with_pin = _median_pair(
        lambda: observe(client, bucket, base, ()), now_proof, 3 if quick else 5, "proof"
    )
    return {"raw_bytes": size, "unpinned_s": unpinned, "pinned_s": with_pin}


def run(quick: bool, workdir: Path | None = None) -> dict[str, Any]:
    base = Path(workdir) if workdir is not None else WORK_DIR
    base.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="pinning-", dir=base))
    try:
        with private_store("pinning") as store:
            client, bucket = make_client(store.settings()), store.bucket
            figures = {
                "quick": quick,
                "derivatives": _derivatives(client, bucket, root, quick),
                "proof": _proof(client, bucket, root, quick),
            }
    finally:
        shutil.rmtree(root, ignore_errors=True)
    for part in ("derivatives", "proof"):
        item = figures[part]
        item["ratio"] = Spread.of(item["pinned_s"]).median / Spread.of(item["unpinned_s"]).median
    return figures


def targets(result: dict[str, Any]) -> list[Target]:
    scopes = {
        "derivatives": f"{result['derivatives']['segment_mb']:.0f} MB HEVC segment",
        "proof": f"{result['proof']['raw_bytes'] / 1024**2:.0f} MiB raw + 4 MB sensor log",
    }
    return [
        Target(
            "pinning",
            scopes[part],
            f"{part}: pinned / unpinned (median)",
            f"<= {TARGET}",
            f"{result[part]['ratio']:.3f}",
            result[part]["ratio"] <= TARGET,
            f"{(result[part]['ratio'] - 1) * 100:.1f}% over",
        )
        for part in ("derivatives", "proof")
    ]


def markdown(result: dict[str, Any]) -> str:
    rows = [
        (
            part,
            ", ".join(f"{s:.2f}" for s in result[part]["unpinned_s"]),
            ", ".join(f"{s:.2f}" for s in result[part]["pinned_s"]),
            f"{result[part]['ratio']:.3f}",
        )
        for part in ("derivatives", "proof")
    ]
    return "\n\n".join(
        [
            "## Trust-chain pinning overhead",
            "Unpinned: the raw-video proof alone and derivatives from a plain signed URL. "
            "Pinned: the proof of the raw video, the media session and the sensor log plus the "
            "guard's HEAD of every proven object; derivatives from a URL with If-Match signed "
            "in, sent by ffmpeg on every request. Interleaved repeats; the ratio compares "
            "medians.",
            md_table(["what", "unpinned (s)", "pinned (s)", "pinned / unpinned"], rows),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(markdown(run(args.quick)))


if __name__ == "__main__":
    main()
