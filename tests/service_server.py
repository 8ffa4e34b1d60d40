"""A real ``router serve`` in a subprocess, for the tests that need real workers and a real socket."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``router serve`` on a free port; ``stop()`` ends it (or ``kill()``, as a crash would)."""

    def __init__(self, database_url: str, scenario: str, *, workers: int = 1, token: str | None = None,
                 model: str = "none", log: Path | None = None) -> None:  # fmt: skip
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update(ROUTER_DATABASE_URL=database_url, ROUTER_SCENARIO=scenario, ROUTER_WORKERS=str(workers),
                   ROUTER_PORT=str(self.port), ROUTER_MODEL=model, ROUTER_LOG_FORMAT="json")  # fmt: skip
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        if token:
            env["ROUTER_TOKEN"] = token
        self.log = log
        out = open(log, "wb") if log is not None else subprocess.DEVNULL  # noqa: SIM115 - the child writes it until stop()
        # its own process group: a kill reaches the supervisor and every worker
        self.proc = subprocess.Popen([sys.executable, "-m", "router", "serve"], env=env, cwd=ROOT, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        self.wait_ready(workers)

    def wait_ready(self, workers: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        seen: set[int] = set()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log.read_text()[-3000:] if self.log is not None and self.log.exists() else ""
                raise RuntimeError(f"router serve exited with {self.proc.returncode}:\n{tail}")
            try:
                r = httpx.get(self.url + "/readyz", timeout=2.0)
                if r.status_code == 200:
                    seen.add(int(httpx.get(self.url + "/healthz", timeout=2.0).json()["pid"]))
                    if len(seen) >= min(workers, 2):  # at least two workers answer (the kernel spreads connections)
                        return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"router serve not ready after {timeout} s")

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown handler runs."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
