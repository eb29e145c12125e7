"""Describe the machine a benchmark ran on: figures mean little without it."""

from __future__ import annotations

import os
import platform
import subprocess
from dataclasses import dataclass
from importlib import metadata

from bench.common import md_table
from robotrace_assets.objectstore.local import weed_binary


@dataclass(frozen=True)
class Machine:
    cpu_model: str
    cpu_flags: str
    logical_cpus: int
    usable_cpus: int
    ram_gib: float
    kernel: str
    python: str
    weed_version: str
    packages: str
    load_average: str

    def markdown(self) -> str:
        rows = [
            ("CPU", self.cpu_model),
            ("CPU hash features", self.cpu_flags),
            (
                "Cores (logical / usable by this process)",
                f"{self.logical_cpus} / {self.usable_cpus}",
            ),
            ("RAM", f"{self.ram_gib:.1f} GiB"),
            ("Kernel", self.kernel),
            ("Python", self.python),
            ("SeaweedFS (`weed version`)", self.weed_version),
            ("Packages", self.packages),
            ("Load average at start (1/5/15 min)", self.load_average),
        ]
        return md_table(["", ""], rows)


def _cpuinfo() -> tuple[str, set[str]]:
    model, flags = "unknown", set()
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                name, _, value = line.partition(":")
                if name.strip() == "model name" and model == "unknown":
                    model = value.strip()
                elif name.strip() == "flags" and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model, flags


def _ram_gib() -> float:
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("nan")


def _weed_version() -> str:
    try:
        output = subprocess.run(
            [weed_binary(), "version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError) as error:
        return f"unavailable ({type(error).__name__})"
    lines = [line.strip() for line in output.splitlines() if line.strip().startswith("version")]
    return lines[0] if lines else "unknown"


def _versions(names: tuple[str, ...]) -> str:
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} (not installed)")
    return ", ".join(found)


def describe() -> Machine:
    model, flags = _cpuinfo()
    # SHA-NI decides whether SHA-256 or MD5 is the slower hash, so it is worth printing.
    hash_flags = [flag for flag in ("sha_ni", "avx2", "avx512f") if flag in flags]
    load = os.getloadavg()
    return Machine(
        cpu_model=model,
        cpu_flags=", ".join(hash_flags) or "none of sha_ni/avx2/avx512f",
        logical_cpus=os.cpu_count() or 0,
        usable_cpus=len(os.sched_getaffinity(0)),
        ram_gib=_ram_gib(),
        kernel=f"{platform.system()} {platform.release()}",
        python=f"{platform.python_implementation()} {platform.python_version()}",
        weed_version=_weed_version(),
        packages=_versions(("boto3", "botocore", "urllib3", "dagster", "dagster-aws")),
        load_average=" / ".join(f"{value:.2f}" for value in load),
    )


if __name__ == "__main__":
    print(describe().markdown())
