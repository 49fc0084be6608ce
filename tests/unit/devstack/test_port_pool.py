"""Ports for the test processes: never the same one to two processes at once (concurrent test workers)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from homesec_devstack.port_pool import ephemeral_low, reserve_port
from homesec_devstack.procs import free_port, port_is_free

HOLDER = "from homesec_devstack.port_pool import reserve_port; print(reserve_port(), flush=True); input()"


def test_free_ports_are_distinct_free_and_below_the_ephemeral_range() -> None:
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == len(ports), "a port was handed out twice"
    assert all(p < ephemeral_low() for p in ports), "kernel-chosen ports collide with client sockets"
    assert all(port_is_free(p) for p in ports)


def test_a_port_another_process_holds_is_never_handed_out() -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None
        held = int(holder.stdout.readline())
        with pytest.raises(RuntimeError, match="no free port"):
            reserve_port(held, held + 1)  # the only candidate is the other process's
    finally:
        holder.communicate(b"\n", timeout=30)
    assert reserve_port(held, held + 1) == held  # released when its process exits
