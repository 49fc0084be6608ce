"""Fixtures of the image tests: the images (built once per session), one working container per test."""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable, Iterator

import pytest
from homesec_devstack.azurite import AzuriteProcess, blob_connection_string
from homesec_devstack.emulator_process import EmulatorProcess, emulator_connection_string
from homesec_devstack.procs import free_port

from tests.images.buildah import ImageConfig, WorkingContainer, build_images, inspect_image
from tests.images.support import SERVICES, Service, ServiceEnv

EmulatorFactory = Callable[..., EmulatorProcess]


@pytest.fixture(scope="session")
def built() -> float:
    """Build both images (a cached rebuild when nothing changed) once per session."""
    return build_images()


@pytest.fixture(params=sorted(SERVICES))
def service(request: pytest.FixtureRequest, built: float) -> Service:
    return SERVICES[str(request.param)]


@pytest.fixture
def config(service: Service) -> ImageConfig:
    return inspect_image(service.image)


@pytest.fixture
def container(service: Service) -> Iterator[WorkingContainer]:
    with WorkingContainer(service.image) as ctr:
        yield ctr


@pytest.fixture
def service_env(
    service: Service, azurite: AzuriteProcess, emulator_factory: EmulatorFactory, container_name: str
) -> ServiceEnv:
    """The admin port (probes, metrics) and settings for a local run: the emulator when it exists (else a
    dead port: liveness must not need Event Hubs), Azurite for Blob."""
    port = free_port()
    live = importlib.util.find_spec("homesec_devstack.emulator.__main__") is not None
    eventhub = emulator_factory().connection_string() if live else emulator_connection_string(free_port())
    prefix = service.env_prefix
    env = {
        f"{prefix}HOST": "127.0.0.1",
        f"{prefix}PORT": str(free_port()),
        f"{prefix}ADMIN_HOST": "127.0.0.1",
        f"{prefix}ADMIN_PORT": str(port),
        f"{prefix}EVENTHUB_CONNECTION_STRING": eventhub,
    }
    env[f"{prefix}AUTH_KEYS"] = json.dumps({"image-test": "k" * 40})  # both verify tokens
    if service.name != "producer":
        env[f"{prefix}BLOB_CONNECTION_STRING"] = blob_connection_string(azurite.port)
        for kind in ("checkpoint", "rollup", "deadletter"):
            env[f"{prefix}{kind.upper()}_CONTAINER"] = f"{container_name}-{kind[:4]}"
    return ServiceEnv(port, env, eventhubs_live=live)
