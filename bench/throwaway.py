"""What a throwaway server process of the bench and the tests has in common (redis-server,
haproxy): a working directory of its own, a process stopped on `stop()`, the directory removed
on `cleanup()`, and both on leaving a `with` block, even when starting failed half-way."""

from __future__ import annotations

import subprocess
import tempfile
from types import TracebackType
from typing import Self

from conformance.server import stop_process


class Throwaway:
    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.url = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.TemporaryDirectory()

    def start(self) -> str:
        """Start the process; answers the URL it serves."""
        raise NotImplementedError

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        stop_process(proc)

    def cleanup(self) -> None:
        self.stop()
        self._dir.cleanup()

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()
