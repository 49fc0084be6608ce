"""The two Event Hubs transports the services support, for parametrized integration tests: ``amqp`` (the
emulator's plain AMQP port) and ``amqp_websockets`` (its WebSocket listener, start it with
``websocket=True``), set through the services' own settings."""

from __future__ import annotations

from homesec_devstack.emulator_process import EmulatorProcess

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


def websocket_connections(emulator: EmulatorProcess) -> int:
    """Connections the emulator accepted over WebSockets (0 without a WebSocket listener)."""
    return int(emulator.stats().get("websocket_connections_total", 0))
