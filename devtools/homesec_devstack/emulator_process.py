"""Start the Event Hubs emulator as a real process and drive its admin endpoint (tests, benchmarks, stack)."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from homesec_devstack.procs import ManagedProcess, free_port

DEV_KEY_NAME = "RootManageSharedAccessKey"
DEV_KEY = "ZGV2LWtleS1ub3Qtc2VjcmV0"
PARTITIONS = 16


def stack_hubs(partitions: int = PARTITIONS) -> str:
    """The hubs the services use, for ``--hubs``: ``telemetry`` (readings) and ``alarms`` (the consumer's
    alarm transitions), with the same partition count. Both are keyed by home ID and hashed the same way, so
    the homes of one telemetry partition all map to one alarms partition: a consumer that owns a telemetry
    partition reads back a single alarms partition for its homes (``EventHubAlarmPublisher.published_since``).
    """
    return f"telemetry:{partitions},alarms:{partitions}"


def websocket_client_kwargs(ws_port: int) -> dict[str, Any]:
    """Client keywords that put the SDK on the emulator's AMQP-over-WebSocket listener (plain ``ws://``).

    With ``UseDevelopmentEmulator=true`` the SDK drops TLS but sends WebSocket traffic to port 443 of the
    endpoint's host; ``custom_endpoint_address`` (its port, then ``/$servicebus/websocket``) points it at
    ``ws://127.0.0.1:<ws_port>/$servicebus/websocket`` instead.
    """
    from azure.eventhub import TransportType

    return {
        "transport_type": TransportType.AmqpOverWebsocket,
        "custom_endpoint_address": f"sb://127.0.0.1:{ws_port}",
    }


def emulator_connection_string(
    port: int, hub: str = "telemetry", key_name: str = DEV_KEY_NAME, key: str = DEV_KEY
) -> str:
    return (
        f"Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName={key_name};SharedAccessKey={key};"
        f"UseDevelopmentEmulator=true;EntityPath={hub}"
    )


class EmulatorProcess:
    """``python -m homesec_devstack.emulator`` on free loopback ports, data in ``data_dir``."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int | None = None,
        admin_port: int | None = None,
        hubs: str = stack_hubs(),
        consumer_groups: str = "$Default,rollups",
        throughput_units: int | None = None,
        auto_inflate_max: int | None = None,
        check_sas: bool = False,
        websocket: bool = False,
        ws_port: int | None = None,
        tls: bool = False,
        tls_port: int | None = None,
        wss_port: int | None = None,
        host: str = "127.0.0.1",
        extra_args: list[str] | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.admin_port = admin_port or free_port()
        args = [
            "--data-dir", str(data_dir), "--port", str(self.port), "--admin-port", str(self.admin_port),
            "--hubs", hubs, "--consumer-groups", consumer_groups,
        ]  # fmt: skip
        self.ws_port = (ws_port or free_port()) if websocket or ws_port else None
        if self.ws_port is not None:
            args += ["--ws-port", str(self.ws_port)]
        self.tls_port = (tls_port or free_port()) if tls or tls_port else None
        self.wss_port = wss_port
        for flag, value in (("--tls-port", self.tls_port), ("--wss-port", wss_port)):
            if value is not None:
                args += [flag, str(value)]
        args += ["--host", host]
        if throughput_units is not None:
            args += ["--throughput-units", str(throughput_units)]
        if auto_inflate_max is not None:
            args += ["--auto-inflate-max", str(auto_inflate_max)]
        if check_sas:
            args += ["--check-sas", "--key", f"{DEV_KEY_NAME}={DEV_KEY}"]
        self.args = args + (extra_args or [])
        self.log_dir = log_dir
        self._proc: ManagedProcess | None = None

    def connection_string(self, hub: str = "telemetry", key: str = DEV_KEY) -> str:
        return emulator_connection_string(self.port, hub, key=key)

    @property
    def tls_ca(self) -> Path:
        """The CA that signed the TLS listeners' certificate (``connection_verify=`` or ``SSL_CERT_FILE``)."""
        return self.data_dir / "tls" / "ca.pem"

    def tls_connection_string(
        self, hub: str = "telemetry", key: str = DEV_KEY, host: str = "localhost"
    ) -> str:
        """A connection string for the TLS listener as clients see Event Hubs (no ``UseDevelopmentEmulator``).

        The SDK then dials ``amqps://<host>:5671``; on another ``tls_port`` pass
        ``custom_endpoint_address=f"amqps://{host}:{tls_port}"`` and ``transport_type=TransportType.Amqp``.
        """
        return (
            f"Endpoint=sb://{host}/;SharedAccessKeyName={DEV_KEY_NAME};SharedAccessKey={key};EntityPath={hub}"
        )

    def create_hub(self, name: str, partitions: int = 4) -> dict[str, Any]:
        """Create a hub at run time (``POST /hubs``)."""
        created: dict[str, Any] = self.admin("POST", "/hubs", {"name": name, "partitions": partitions})
        return created

    def websocket_kwargs(self) -> dict[str, Any]:
        """Client keywords for AMQP over WebSocket (start with ``websocket=True``)."""
        if self.ws_port is None:
            raise RuntimeError("this emulator has no WebSocket listener: start it with websocket=True")
        return websocket_client_kwargs(self.ws_port)

    def start(self, timeout: float = 30.0) -> EmulatorProcess:
        self._proc = ManagedProcess.python_module(
            "eventhubs-emulator", "homesec_devstack.emulator", self.args, log_dir=self.log_dir
        )
        self._proc.start()
        try:  # the answers must come from this emulator, not another one on the same ports
            self._proc.wait_http(f"http://127.0.0.1:{self.admin_port}/healthz", timeout=timeout, owned=True)
            self._proc.wait_tcp(self.port, timeout=timeout, owned=True)
            for extra in (self.ws_port, self.tls_port, self.wss_port):
                if extra is not None:
                    self._proc.wait_tcp(extra, timeout=timeout, owned=True)
        except BaseException:
            self.stop(grace=5)
            raise
        return self

    def stop(self, grace: float = 10.0) -> int | None:
        rc = self._proc.stop(grace=grace) if self._proc else None
        self._proc = None
        return rc

    def kill(self) -> None:
        if self._proc:
            self._proc.kill()
        self._proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def process(self) -> ManagedProcess:
        assert self._proc is not None
        return self._proc

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"http://127.0.0.1:{self.admin_port}{path}", data=data, method=method,
            headers={"content-type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310
            return json.loads(resp.read() or b"null")

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.admin("GET", "/stats")
        return result

    def drop_connections(self) -> None:
        self.admin("POST", "/faults/drop-connections")

    def pause_partition(self, hub: str, partition: str) -> None:
        self.admin("POST", f"/hubs/{hub}/partitions/{partition}/pause")

    def resume_partition(self, hub: str, partition: str) -> None:
        self.admin("POST", f"/hubs/{hub}/partitions/{partition}/resume")

    def set_throughput_units(self, units: int | None, auto_inflate_max: int | None = None) -> None:
        self.admin("POST", "/throughput-units", {"units": units, "auto_inflate_max": auto_inflate_max})

    def __enter__(self) -> EmulatorProcess:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
