"""What a throwaway server process of the bench and the tests has in common (redis-server,
haproxy): a working directory of its own, a process stopped on `stop()`, the directory removed
on `cleanup()`, and both on leaving a `with` block, even when starting failed half-way."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from types import TracebackType
from typing import Self

from conformance.server import stop_process


def debian_binary(package: str, find: Callable[[], str | None]) -> str | None:
    """`find()`, after installing Debian's `package` when it finds nothing and this runs as root
    with apt-get; None when it is still missing."""
    found = find()
    if found is not None or os.geteuid() != 0 or shutil.which("apt-get") is None:
        return found
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "--no-install-recommends", package]
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        # A fresh container has no package lists yet.
        subprocess.run(["apt-get", "update"], env=env, capture_output=True)
        subprocess.run(install, env=env, capture_output=True)
    return find()


class Throwaway:
    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.url = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._dir = tempfile.TemporaryDirectory()

    def start(self) -> str:
        """Start the process; answers the URL it serves."""
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

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
