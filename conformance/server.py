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


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it has not exited within 10 s; waits for it either way."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


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
        self.launch()
        return self.wait_ready(timeout_s)

    def launch(self) -> str:
        """Start the process and return its URL at once. The socket listens before the child
        runs, so a request sent before the server is up waits in the backlog rather than failing;
        `wait_ready` still says whether it came up at all."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        if sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT"):
            # A server of several workers then gives each a socket of its own beside this one,
            # and the kernel spreads connections over them (mock_server/store/workers.py).
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
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
        return self.url

    def wait_ready(self, timeout_s: float = 30.0) -> str:
        """Wait until the launched server answers its health check; stop it if it never does."""
        if self._proc is None:
            raise ReferenceServerError("the reference server was not launched")
        deadline = time.monotonic() + timeout_s
        # One client for every probe: plain HTTP on loopback, so no CA bundle to load each time.
        with httpx.Client(timeout=1.0, verify=False) as http:
            while time.monotonic() < deadline:
                if self._proc.poll() is not None:
                    output = self.output()
                    raise ReferenceServerError(f"reference server exited at start-up:\n{output}")
                try:
                    if http.get(f"{self.url}/_mock/health").status_code == 200:
                        return self.url
                except httpx.HTTPError:
                    pass
                time.sleep(0.02)
        self.stop()
        raise ReferenceServerError(f"reference server did not answer within {timeout_s}s")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        stop_process(proc)
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
