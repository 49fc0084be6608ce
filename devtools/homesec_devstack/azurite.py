"""Run Azurite's blob service (npm package ``azurite``, pinned in package-lock.json) on loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType

from homesec_devstack.procs import ManagedProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "devstoreaccount1"
# Azurite's published well-known development key (not a secret).
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_binary() -> Path:
    path = ROOT / "node_modules" / ".bin" / "azurite-blob"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run 'make setup' (npm ci)")
    return path


def blob_connection_string(port: int, host: str = "127.0.0.1") -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://{host}:{port}/{ACCOUNT};"
    )


class AzuriteProcess:
    """Azurite blob on 127.0.0.1 with its data in ``location``; stopped on exit."""

    def __init__(self, location: Path, port: int | None = None, log_dir: Path | None = None) -> None:
        self.location = location
        self.port = port or free_port()
        self.log_dir = log_dir
        self._proc: ManagedProcess | None = None

    @property
    def connection_string(self) -> str:
        return blob_connection_string(self.port)

    def start(self, timeout: float = 60.0) -> AzuriteProcess:
        self.location.mkdir(parents=True, exist_ok=True)
        argv = [
            str(azurite_binary()), "--silent", "--skipApiVersionCheck", "--disableTelemetry", "--loose",
            "--location", str(self.location), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
        ]  # fmt: skip
        self._proc = ManagedProcess("azurite", argv, log_dir=self.log_dir)
        self._proc.start()
        try:  # the port must be this Azurite's, not another one's
            self._proc.wait_tcp(self.port, timeout=timeout, owned=True)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop(grace=5)
            self._proc = None

    @property
    def process(self) -> ManagedProcess:
        assert self._proc is not None, "not started"
        return self._proc

    def create_containers(self, names: Iterable[str]) -> None:
        asyncio.run(create_containers(self.connection_string, names))

    def __enter__(self) -> AzuriteProcess:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


async def create_containers(connection_string: str, names: Iterable[str]) -> None:
    """Create the containers if missing (BlobCheckpointStore never creates its own)."""
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob.aio import BlobServiceClient

    async with BlobServiceClient.from_connection_string(connection_string) as svc:
        for name in names:
            with contextlib.suppress(ResourceExistsError):
                await svc.create_container(name)
