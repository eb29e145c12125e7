"""One supervised process of the topology: started in a process group of its own (so stopping it
stops what it started), logged to a file, and healthy only when its probe says so."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


class TopologyError(RuntimeError):
    pass


Probe = Callable[[], bool]


@dataclass
class Component:
    name: str
    command: Sequence[str]
    probe: Probe  # True when the component serves (never raises for "not yet")
    log: Path
    env: Mapping[str, str]
    cwd: Path
    start_timeout_s: float = 120.0
    on_ready: Callable[[], None] | None = None  # after the first healthy probe (bucket creation)
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    started_at: float = 0.0  # wall time of the last start (daemon heartbeats are compared to it)
    expected_down: bool = True  # stopped or killed on purpose: not a crash

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def exit_code(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def start(self) -> None:
        if self.running():
            return
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as output:
            output.write(f"\n--- start {time.strftime('%H:%M:%S')}: {self.name}\n".encode())
            output.flush()
            self.process = subprocess.Popen(
                list(self.command),
                env=dict(self.env),
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() reaches its children
            )
        self.started_at = time.time()
        self.expected_down = False

    def wait_healthy(self, timeout_s: float | None = None) -> float:
        """Block until the probe answers; seconds it took. Fails early if the process exits."""
        began = time.monotonic()
        deadline = began + (timeout_s or self.start_timeout_s)
        while time.monotonic() < deadline:
            if not self.running():
                raise TopologyError(
                    f"{self.name} exited with {self.exit_code()} while starting; log tail:\n"
                    f"{self.log_tail()}"
                )
            if self.probe():
                if self.on_ready:
                    self.on_ready()
                return time.monotonic() - began
            time.sleep(0.25)
        raise TopologyError(
            f"{self.name} not healthy within {timeout_s or self.start_timeout_s:.0f}s; log tail:"
            f"\n{self.log_tail()}"
        )

    def signal(self, sig: signal.Signals, group: bool = True) -> None:
        """Send `sig` to the process (and, with `group`, to everything it started)."""
        if not self.running():
            return
        assert self.process is not None
        self.expected_down = True
        try:
            if group:
                os.killpg(self.process.pid, sig)
            else:
                self.process.send_signal(sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """kill -9 of the process alone, as a crash would: its children are left behind."""
        self.signal(signal.SIGKILL, group=False)
        self._reap(10.0)

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM to the group, then SIGKILL to the group if it has not exited in time."""
        if self.process is None:
            return
        self.signal(signal.SIGTERM)
        if not self._reap(timeout_s):
            self.signal(signal.SIGKILL)
            self._reap(10.0)
        self._kill_leftovers()

    def _reap(self, timeout_s: float) -> bool:
        assert self.process is not None
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True

    def _kill_leftovers(self) -> None:
        """Members of the group that outlived its leader (a server's stray child)."""
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def python_module(module: str, *args: str) -> list[str]:
    """A command that runs `module` with this interpreter (the venv of this checkout)."""
    import sys

    return [sys.executable, "-m", module, *args]


def venv_script(name: str) -> str:
    import shutil
    import sys

    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)
