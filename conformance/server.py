"""Starts the bundled reference server on a free 127.0.0.1 port, and always stops it.

The parent binds the socket and hands it to the child (`--fd`), so there is no window in which
another process could take the port between choosing and binding it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import TracebackType

import httpx

REPO = Path(__file__).resolve().parent.parent


class ReferenceServerError(RuntimeError):
    pass


class ReferenceServer:
    def __init__(
        self,
        profile: Path | None = None,
        *,
        extra_args: tuple[str, ...] = (),
        module: str = "mock_server",
    ) -> None:
        self.profile = profile
        self.extra_args = extra_args
        self.module = module  # any module taking the same --fd / --profile (bench.bare does)
        self.url = ""
        self._proc: subprocess.Popen[bytes] | None = None
        # A file, not a pipe: a chatty server must never block on a pipe nobody reads.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the server
        self._output = ""

    def start(self, timeout_s: float = 30.0) -> str:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        port = sock.getsockname()[1]
        args = [sys.executable, "-m", self.module, "--fd", str(sock.fileno())]
        if self.profile is not None:
            args += ["--profile", str(self.profile)]
        args += list(self.extra_args)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        self._proc = subprocess.Popen(
            args,
            pass_fds=(sock.fileno(),),
            cwd=REPO,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        sock.close()  # the child holds its own copy of the listening socket
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ReferenceServerError(f"reference server exited at start-up:\n{self.output()}")
            try:
                if httpx.get(f"{self.url}/_mock/health", timeout=1.0).status_code == 200:
                    return self.url
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise ReferenceServerError(f"reference server did not answer within {timeout_s}s")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        self._output = self.output()
        self._log.close()

    @property
    def pid(self) -> int | None:
        """The server process's id while it runs (to read its memory or profile it)."""
        return self._proc.pid if self._proc is not None else None

    def output(self) -> str:
        """What the server printed so far (banner, warnings, tracebacks)."""
        if self._log.closed:
            return self._output
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def __enter__(self) -> ReferenceServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
