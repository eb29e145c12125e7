"""The real `dagster-webserver` on a free loopback port, and its GraphQL API."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from robotrace_assets_tests.helpers import stop_process_group

WORKSPACE_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries {
    name loadStatus
    locationOrLoadError { __typename ... on PythonError { message } }
} } } }
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Webserver:
    url: str

    def graphql(self, query: str, **variables: Any) -> dict[str, Any]:
        response = requests.post(
            f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=60
        )
        response.raise_for_status()
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]


@contextmanager
def dagster_webserver(
    workspace: Path, env: Mapping[str, str], log: Path, timeout_s: float = 90
) -> Iterator[Webserver]:
    """Start the webserver on `workspace` and wait until its code location has loaded."""
    port = free_port()
    binary = Path(sys.executable).parent / "dagster-webserver"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [str(binary), "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)],
            cwd=workspace.parent,
            env=dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its code server goes down with it
        )
    server = Webserver(f"http://127.0.0.1:{port}")
    try:
        _wait_loaded(server, process, log, timeout_s)
        yield server
    finally:
        stop_process_group(process)


def _wait_loaded(
    server: Webserver, process: subprocess.Popen[bytes], log: Path, timeout_s: float
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster-webserver exited:\n{log.read_text()[-3000:]}")
        try:
            entries = server.graphql(WORKSPACE_QUERY)["workspaceOrError"]["locationEntries"]
        except (requests.ConnectionError, requests.HTTPError):
            time.sleep(0.5)
            continue
        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
            errors = [
                e for e in entries if e["locationOrLoadError"]["__typename"] != "RepositoryLocation"
            ]
            assert not errors, errors
            return
        time.sleep(0.5)
    raise TimeoutError(f"code location not loaded in {timeout_s}s:\n{log.read_text()[-3000:]}")
