"""Child process for the proof benchmark: one `observe()` in a fresh interpreter.

A fresh process makes the peak RSS mean something: it is observe()'s footprint plus the
interpreter and boto3, not whatever the benchmark parent happens to hold. The store comes
from ROBOTRACE_* environment variables; the expectation arrives as JSON in argv[1] and the
SeaweedFS server's pid in argv[2]. One JSON line on stdout reports the timing, the CPU split
(this process, the server, everything else on the machine) and memory.
"""

from __future__ import annotations

import json
import resource
import sys
import time

from bench.common import machine_cpu_s, process_cpu_s
from robotrace_assets.objectstore.client import make_client
from robotrace_assets.proof.observe import observe
from robotrace_assets.proof.rules import Expectation
from robotrace_assets.settings import Settings


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return -1


def main(argv: list[str]) -> int:
    expect = Expectation(**json.loads(argv[0]))
    server_pid = int(argv[1])
    settings = Settings.from_env()
    client = make_client(settings)
    # Memory already held before observe() runs: interpreter, imports, the boto3 client.
    before_kib = _status_kib("VmHWM")
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    server_before, machine_before = process_cpu_s(server_pid), machine_cpu_s()
    started = time.perf_counter()
    observation, extra = observe(client, settings.bucket, expect)
    elapsed = time.perf_counter() - started
    server_after, machine_after = process_cpu_s(server_pid), machine_cpu_s()
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    own_cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (
        cpu_after.ru_stime - cpu_before.ru_stime
    )
    result = {
        "seconds": elapsed,
        "read_seconds": extra.get("read_seconds"),
        "cpu_s": own_cpu,
        "server_cpu_s": server_after - server_before,
        # Busy time of the whole machine minus ours and the server's: other tenants' load.
        "others_cpu_s": (machine_after - machine_before) - own_cpu - (server_after - server_before),
        "hwm_before_kib": before_kib,
        "hwm_kib": _status_kib("VmHWM"),
        "read_size": observation.read_size,
        "sha256_ok": observation.read_sha256 == expect.sha256,
        "parts": len(observation.parts),
        "read_error": observation.read_error,
    }
    print(json.dumps(result))
    return 0 if result["sha256_ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
