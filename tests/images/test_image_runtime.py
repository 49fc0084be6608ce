"""The images running: a probe app on their runtime stack and their own entrypoints.

``buildah run --isolation chroot`` with the host network (everything binds 127.0.0.1 only), and a
read-only-root run (private read-only bind mount of the container, tmpfs on /tmp) like a pod with
``readOnlyRootFilesystem: true``.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from homesec_devstack.procs import ManagedProcess, free_port, http_status

from tests.images.buildah import ContainerProcess, ImageConfig, WorkingContainer, cmdline, read_only_root_argv
from tests.images.support import APP, MARKS, VENV, Service, ServiceEnv, WriteWatch, get

pytestmark = MARKS


def test_runtime_stack_serves_read_only(
    service: Service, container: WorkingContainer, tmp_path: Path
) -> None:
    """FastAPI/uvicorn(uvloop, httptools)/prometheus_client serve from the image, writing nothing but /tmp."""
    port = free_port()
    probe = Path(__file__).with_name("probe_app.py")
    argv = [f"/{VENV}/bin/python", "/probe/probe_app.py", str(port)]
    mounts = [f"type=bind,src={probe.parent},dst=/probe,ro"]
    with (
        WriteWatch(container, mounts) as watch,
        ContainerProcess(container, f"probe-{service.name}", argv, tmp_path, mounts) as app,
    ):
        app.proc.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        assert "probe_healthz_requests_total 1.0" in get(f"http://127.0.0.1:{port}/metrics")
        ended = app.terminate()
    log = app.proc.log_tail()
    assert ended in {"exit 0", "SIGTERM"}, log
    assert "Application shutdown complete" in log, "uvicorn did not shut down gracefully on SIGTERM"
    assert watch.changed() == []


def _service_root(container: WorkingContainer, service: Service) -> Path:
    """The mounted container root; the image must carry the service's entrypoint module."""
    root = container.mount()
    assert (root / APP / f"homesec_{service.name}" / "__main__.py").is_file(), "service missing from image"
    return root


def test_entrypoint_serves_health_and_metrics(
    service: Service,
    config: ImageConfig,
    container: WorkingContainer,
    service_env: ServiceEnv,
    tmp_path: Path,
) -> None:
    """The image's own entrypoint starts, answers /healthz and /metrics, and exits 0 on SIGTERM."""
    _service_root(container, service)
    port = service_env.port
    container.set_env(service_env.env)
    with (
        WriteWatch(container) as watch,
        ContainerProcess(container, service.name, config.entrypoint, tmp_path) as app,
    ):
        app.proc.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        body = get(f"http://127.0.0.1:{port}/metrics")
        assert f"homesec_{service.name}_ready" in body, body[:2000]
        if service_env.eventhubs_live:
            # Ready: the SDKs inside the image reached the emulator over AMQP (and the consumer Azurite).
            app.proc.wait_http(f"http://127.0.0.1:{port}/readyz", timeout=60)
        else:
            assert http_status(f"http://127.0.0.1:{port}/readyz") in (200, 503)
        started = time.monotonic()
        ended = app.terminate(timeout=40)
    log = app.proc.log_tail(200)
    assert ended in {"exit 0", "SIGTERM"}, log
    assert service.stopped_log in log, "no graceful shutdown on SIGTERM"
    assert time.monotonic() - started < 35
    assert watch.changed() == []


def test_entrypoint_on_read_only_root(
    service: Service,
    config: ImageConfig,
    container: WorkingContainer,
    service_env: ServiceEnv,
    tmp_path: Path,
) -> None:
    """readOnlyRootFilesystem: the entrypoint starts, serves and stops with only /tmp writable."""
    root = _service_root(container, service)
    port = service_env.port
    argv = read_only_root_argv(root, config, service_env.env)
    with ManagedProcess(f"{service.name}-ro", argv, log_dir=tmp_path) as app:
        app.wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
        assert cmdline(app.pid) == config.entrypoint  # exec all the way: the signal goes to python itself
        assert f"homesec_{service.name}_ready" in get(f"http://127.0.0.1:{port}/metrics")
        app.send_signal(signal.SIGTERM)
        code = app.wait(timeout=40)
    log = app.log_tail(200)
    assert code in (0, -signal.SIGTERM), log
    assert service.stopped_log in log, "no graceful shutdown on SIGTERM"
    assert "Read-only file system" not in log, log
