"""Loopback ports for the processes the dev stack and the tests start, safe for concurrent test workers.

A port bound to 0 and released (the usual "free port" trick) can be handed to another process before the
child meant to listen on it binds: two pytest-xdist workers, or two test runs on one machine, then collide.
``reserve_port`` picks ports below the kernel's ephemeral range (where port-0 binds and outgoing connections
take theirs) and reserves each one with an advisory lock on a file in a directory every process on the
machine shares, held until the process that reserved it exits. A port is never handed out twice at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import socket
import tempfile
from pathlib import Path

LOW = 20000  # above the well-known development ports (5672, 8080, 10000, ...)
DEFAULT_EPHEMERAL_LOW = 32768
ATTEMPTS = 500

_held: dict[int, int] = {}  # port -> the descriptor holding its lock, for the life of this process


def lock_dir() -> Path:
    """Where the port locks live (``HOMESEC_PORT_LOCK_DIR``, else the system's temporary directory)."""
    return Path(os.environ.get("HOMESEC_PORT_LOCK_DIR") or tempfile.gettempdir()) / "homesec-ports"


def ephemeral_low() -> int:
    """The first port of the kernel's ephemeral range (Linux /proc; the common default elsewhere)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return DEFAULT_EPHEMERAL_LOW


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _lock(port: int) -> int | None:
    """The descriptor of ``port``'s lock if this process could take it, else None."""
    directory = lock_dir()
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / f"{port}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def _ephemeral_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def reserve_port(low: int = LOW, high: int | None = None) -> int:
    """A TCP port in ``[low, high)`` (default: up to the ephemeral range) on 127.0.0.1, free now and
    reserved for this process until it exits."""
    high = ephemeral_low() if high is None else high
    if high <= low:  # no room below the ephemeral range: the kernel's choice, unreserved
        return _ephemeral_port()
    rng = random.SystemRandom()
    for _ in range(ATTEMPTS):
        port = rng.randrange(low, high)
        if port in _held:
            continue
        fd = _lock(port)
        if fd is None:
            continue
        if _bindable(port):
            _held[port] = fd
            return port
        with contextlib.suppress(OSError):
            os.close(fd)
    raise RuntimeError(f"no free port in {low}-{high - 1} after {ATTEMPTS} attempts")
