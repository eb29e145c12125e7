"""Files of an export: the destination, the hidden staging directory, publishing, inventory."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from robotrace_assets.delivery.lerobot.model import ExportedFile, LeRobotExportError

__all__ = ["inventory", "prepare_destination", "publish", "staging_dir", "write_json"]


def write_json(path: Path, payload: Mapping[str, Any]) -> None:
    """Indented UTF-8 JSON with a final newline, as LeRobot writes its meta files."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=4, ensure_ascii=False) + "\n", encoding="utf-8")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def inventory(root: Path) -> tuple[ExportedFile, ...]:
    """Every file under ``root`` in path order, with its size and SHA-256."""
    return tuple(
        ExportedFile(p.relative_to(root).as_posix(), p.stat().st_size, _sha256(p))
        for p in sorted(root.rglob("*"))
        if p.is_file()
    )


def prepare_destination(out_dir: Path, overwrite: bool) -> None:
    """Refuse an occupied ``out_dir`` unless ``overwrite``; make sure its parent exists."""
    occupied = out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir()))
    if occupied and not overwrite:
        raise LeRobotExportError(f"{out_dir} already exists and is not empty")
    out_dir.parent.mkdir(parents=True, exist_ok=True)


def staging_dir(out_dir: Path) -> Path:
    """A new hidden sibling of ``out_dir``: same filesystem, so publishing is a rename."""
    staging = out_dir.with_name(f".{out_dir.name}.staging-{uuid.uuid4().hex}")
    staging.mkdir()
    return staging


def publish(staging: Path, out_dir: Path) -> None:
    """Move the finished dataset into place; an existing one is replaced only afterwards."""
    old: Path | None = None
    if out_dir.exists():
        old = out_dir.with_name(f".{out_dir.name}.old-{uuid.uuid4().hex}")
        os.replace(out_dir, old)
    try:
        os.replace(staging, out_dir)
    except OSError:
        if old is not None:
            os.replace(old, out_dir)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
