"""The two Event Hubs transports the services support, for parametrized integration tests: ``amqp`` (the
emulator's plain AMQP port) and ``amqp_websockets`` (its WebSocket listener, start it with
``websocket=True``), set through the services' own settings."""

from __future__ import annotations

import os
from pathlib import Path

import homesec_domain
from homesec_devstack.emulator_process import EmulatorProcess
from homesec_runtime import native

TRANSPORTS = ("amqp", "amqp_websockets")


def service_env(emulator: EmulatorProcess, transport: str) -> dict[str, str]:
    """Settings (without the service's prefix) that put a service on ``transport``."""
    if transport == "amqp":
        return {"TRANSPORT": "amqp"}
    if emulator.ws_port is None:
        raise RuntimeError("start the emulator with websocket=True for amqp_websockets")
    return {
        "TRANSPORT": "amqp_websockets",
        "EVENTHUB_CUSTOM_ENDPOINT_ADDRESS": f"sb://127.0.0.1:{emulator.ws_port}",
    }


def accelerated(service: str, component: str) -> float:
    """What ``homesec_<service>_accelerated{component}`` must read in a service started by this test run:
    1 unless ``HOMESEC_<SERVICE>_ACCELERATORS=off`` (make test-accelerators-off); the fold also needs a
    build matching the sources (make native)."""
    if os.environ.get(f"HOMESEC_{service.upper()}_ACCELERATORS") == "off":
        return 0.0
    if component == "fold":
        pure = os.environ.get("HOMESEC_PURE_PYTHON", "") not in ("", "0")
        return 0.0 if pure or native.check(Path(homesec_domain.__file__).parent) is not None else 1.0
    return 1.0


def websocket_connections(emulator: EmulatorProcess) -> int:
    """Connections the emulator accepted over WebSockets (0 without a WebSocket listener)."""
    return int(emulator.stats().get("websocket_connections_total", 0))
