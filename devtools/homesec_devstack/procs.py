"""Helpers to run real processes on loopback ports and always clean them up."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

from homesec_devstack.port_pool import reserve_port

# Set (from a signal handler) to make every readiness wait give up within about a second: ``make run``'s
# Ctrl-C, SIGTERM and SIGHUP during start-up.
CANCEL_WAITS = threading.Event()


class WaitCancelledError(Exception):
    """A readiness wait gave up because ``CANCEL_WAITS`` was set."""


class PortInUseError(Exception):
    """A port this process was to listen on is taken by another process."""

    def __init__(self, port: int, what: str, hint: str = "") -> None:
        self.port, self.what = port, what
        super().__init__(f"port {port} ({what}) is already in use by another process{hint}")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``host:port`` now (SO_REUSEADDR, as servers bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
        return True


def _listening_inodes(port: int) -> set[str] | None:
    """Socket inodes listening on TCP ``port`` (any address), from /proc/net; None where there is no /proc."""
    inodes: set[str] = set()
    found_table = False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        found_table = True
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(inode)
    return inodes if found_table else None


def port_owned_by_session(port: int, sid: int) -> bool | None:
    """Whether a process of session ``sid`` (a child started with ``start_new_session``, and its own
    children) holds a socket listening on ``port``. None when that cannot be told (no /proc)."""
    inodes = _listening_inodes(port)
    if inodes is None:
        return None
    if not inodes:
        return False
    targets = {f"socket:[{inode}]" for inode in inodes}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getsid(int(entry.name)) != sid:
                continue
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if str(fd.readlink()) in targets:
                        return True
        except OSError:
            continue
    return False


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free now and that no other process gets while this one runs
    (``port_pool``: safe for concurrent test workers)."""
    return reserve_port()


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

    @classmethod
    def service(cls, name: str, module: str, args: Sequence[str] = (), **kw: object) -> ManagedProcess:
        """Run a service (``homesec_producer``, ``homesec_consumer``) with ``HOMESEC_SERVICE_PYTHON`` when
        set (``make test-sdk-oldest``: the services on another SDK version than the tests and the
        emulator), else with this interpreter."""
        python = os.environ.get("HOMESEC_SERVICE_PYTHON") or sys.executable
        return cls(name, [python, "-m", module, *args], **kw)  # type: ignore[arg-type]

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

    def _check_alive(self, port: int | None = None) -> None:
        if CANCEL_WAITS.is_set():
            raise WaitCancelledError(f"{self.name}: start-up interrupted")
        if not self.alive():
            rc = self.proc.returncode if self.proc else None
            tail = self.log_tail()
            if port is not None and ("address already in use" in tail.lower() or "EADDRINUSE" in tail):
                raise PortInUseError(port, self.name, f": {self.name} exited ({rc}) unable to listen")
            raise RuntimeError(f"{self.name} exited ({rc}):\n{tail}")

    def _check_owner(self, port: int) -> None:
        """The answer on ``port`` must come from this child (or its children): anything else listening
        there (another stack's process) is refused, even while this child is still starting."""
        self._check_alive(port)
        if port_owned_by_session(port, self.pid) is False:
            hint = f", not by {self.name} (pid {self.pid}), which was started for it"
            raise PortInUseError(port, self.name, hint)

    def wait_tcp(self, port: int, timeout: float = 30.0, *, owned: bool = False) -> ManagedProcess:
        """Wait until ``port`` accepts connections; with ``owned``, refuse an answer from any process but
        this child (and its children) with ``PortInUseError`` (Linux /proc; elsewhere liveness only)."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive(port)
            try:
                wait_tcp(port, timeout=0.5)
                if owned:
                    self._check_owner(port)
                return self
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.name}: port {port} not open:\n{self.log_tail()}") from None

    def wait_http(
        self, url: str, timeout: float = 30.0, ok: Sequence[int] = (200,), *, owned: bool = False
    ) -> ManagedProcess:
        """Wait until ``url`` answers one of ``ok``; ``owned`` as in ``wait_tcp``."""
        port = urllib.parse.urlsplit(url).port
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive(port)
            if http_status(url, timeout=1.0) in ok:
                if owned and port is not None:
                    self._check_owner(port)
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
