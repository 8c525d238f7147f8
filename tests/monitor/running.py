"""Starting the monitor (`python -m monitor`) in front of an upstream on a free 127.0.0.1 port,
and stopping it with SIGTERM as a user's Ctrl-C would: it then writes its reports and exits."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]


class MonitorProcess:
    def __init__(self, upstream: str, report_dir: Path, *extra: str) -> None:
        self.upstream = upstream
        self.report_dir = report_dir
        self.extra = extra
        self.url = ""
        self.returncode: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the process
        self._output = ""

    def start(self, timeout_s: float = 20.0) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "monitor",
                "--upstream",
                self.upstream,
                "--fd",
                str(sock.fileno()),
                "--report-dir",
                str(self.report_dir),
                *self.extra,
            ],
            pass_fds=(sock.fileno(),),
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        sock.close()
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=1.0) as http:
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"the monitor exited at start-up:\n{self.output()}")
                try:
                    if http.get(f"{self.url}/_monitor/status").status_code == 200:
                        return self.url
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"the monitor did not answer within {timeout_s}s:\n{self.output()}")

    def status(self) -> Any:
        return httpx.get(f"{self.url}/_monitor/status", timeout=5).json()

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL if it has not exited in time; returns its exit status."""
        proc, self._proc = self._proc, None
        if proc is None:
            return self.returncode
        proc.terminate()
        try:
            self.returncode = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
            self.returncode = None
        self._output = self.output()
        self._log.close()
        return self.returncode

    def output(self) -> str:
        """What the monitor printed (its banner, its verdict, any traceback)."""
        if self._log.closed:
            return self._output
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def report(self) -> Any:
        return json.loads((self.report_dir / "conformance.json").read_text(encoding="utf-8"))

    def __enter__(self) -> MonitorProcess:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
