"""Helpers to run real processes on loopback ports and always clean them up."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_tcp(port: int, timeout: float = 30.0, host: str = "127.0.0.1") -> None:
    """Wait until something accepts TCP connections on ``host:port``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s") from None
            time.sleep(0.05)


def http_status(url: str, timeout: float = 2.0) -> int:
    """GET ``url`` and return the status code (0 when no answer)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return 0


class ManagedProcess:
    """A child process with a log file, readiness waits and a guaranteed stop.

    ``stop()`` sends SIGTERM, waits ``grace`` seconds, then SIGKILLs the whole process group.
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        log_root = log_dir or Path(os.environ.get("HOMESEC_LOG_DIR", ".cache/logs"))
        log_root.mkdir(parents=True, exist_ok=True)
        self.log_path = log_root / f"{name}-{os.getpid()}-{time.monotonic_ns()}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def python_module(cls, name: str, module: str, args: Sequence[str] = (), **kw: object) -> ManagedProcess:
        """Run ``python -m module args`` with this interpreter."""
        return cls(name, [sys.executable, "-m", module, *args], **kw)  # type: ignore[arg-type]

    def start(self) -> ManagedProcess:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv,
            env=self.env,
            cwd=self.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def _check_alive(self) -> None:
        if not self.alive():
            rc = self.proc.returncode if self.proc else None
            raise RuntimeError(f"{self.name} exited ({rc}):\n{self.log_tail()}")

    def wait_tcp(self, port: int, timeout: float = 30.0) -> ManagedProcess:
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            try:
                wait_tcp(port, timeout=0.5)
                return self
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.name}: port {port} not open:\n{self.log_tail()}") from None

    def wait_http(self, url: str, timeout: float = 30.0, ok: Sequence[int] = (200,)) -> ManagedProcess:
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            if http_status(url, timeout=1.0) in ok:
                return self
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: {url} not ready:\n{self.log_tail()}")
            time.sleep(0.1)

    def send_signal(self, sig: int) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(sig)

    def wait(self, timeout: float | None = None) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        """SIGKILL the process group at once (a crash)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=grace)
        self.kill()
        return self.proc.returncode

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
