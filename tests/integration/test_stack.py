"""``make run``'s stack as a user runs it: every component up, readings flow end to end, all stopped after;
a taken port fails at once; Ctrl-C, SIGTERM and SIGHUP (terminal closed) stop it promptly, in start-up too."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from homesec_devstack.procs import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]


ROOT = Path(__file__).resolve().parents[2]


def _final_counts(lines: list[str]) -> dict[str, int]:
    """The ``final`` row of the progress table, by the column titles of the header line above it."""
    at = next(i for i, line in enumerate(lines) if line.split()[:1] == ["final"])
    titles = lines[at - 1].replace("rolled up", "rolled_up").split()
    values = [int(v.replace(",", "")) for v in lines[at].split()[1:]]
    return dict(zip([t.replace("_", " ") for t in titles[1:]], values, strict=True))


def _make_token(data_dir: Path, home: str, audience: str) -> str:
    """``make token HOME=... AUDIENCE=...`` as a user runs it (this interpreter's venv as ``VENV``)."""
    venv = Path(sys.executable).parent.parent
    argv = ["make", "--no-print-directory", "-C", str(ROOT), "token", f"HOME={home}", f"AUDIENCE={audience}",
            f"STACK_DATA_DIR={data_dir}", f"VENV={venv}"]  # fmt: skip
    made = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    return made.stdout.strip()


def _status(consumer_url: str, home: str, token: str, timeout: float = 30) -> tuple[int, bytes]:
    """The status API's answer for ``home`` (polled while it is 404: the home has no reading folded yet)."""
    request = urllib.request.Request(
        f"{consumer_url}/v1/homes/{home}/status", headers={"Authorization": f"Bearer {token}"}
    )
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(request, timeout=5) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            if exc.code != 404 or time.monotonic() > deadline:
                return exc.code, exc.read()
        time.sleep(0.5)


class StackRun:
    """``python -m homesec_devstack.stack`` as a process, its stdout collected line by line."""

    def __init__(self, *args: str) -> None:
        argv = [sys.executable, "-m", "homesec_devstack.stack", *args]
        self.stderr = tempfile.TemporaryFile("w+")  # noqa: SIM115 - closed in finish()
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.stderr, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, prefix: str, timeout: float) -> int:
        """Index of the first stdout line that starts with ``prefix`` (stripped)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, line in enumerate(list(self.lines)):
                if line.strip().startswith(prefix):
                    return i
            assert self.proc.poll() is None or self._reader.is_alive(), "\n".join(self.lines)
            time.sleep(0.05)
        raise AssertionError(f"no line {prefix!r} after {timeout}s:\n" + "\n".join(self.lines))

    def finish(self, timeout: float) -> tuple[int, str]:
        try:
            self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(timeout=5)
        self.stderr.seek(0)
        err = self.stderr.read()
        self.stderr.close()
        return self.proc.returncode, err


def _leftovers(data_dir: Path) -> str:
    out = subprocess.run(["pgrep", "-af", str(data_dir)], capture_output=True, text=True, check=False)
    return out.stdout.strip()


def test_local_stack_runs_the_pipeline_and_stops_cleanly(tmp_path: Path) -> None:
    for name in ("eventhubs", "azurite"):  # a previous run's data: removed (no --keep-data)
        (tmp_path / name).mkdir()
        (tmp_path / name / "previous-run").write_text("old")
    run = StackRun("--free-ports", "--duration", "25", "--homes", "500", "--rate", "400",
                   "--flush-interval", "2", "--data-dir", str(tmp_path))  # fmt: skip
    try:
        at = run.wait_line("post one reading", timeout=120)
        curl = run.lines[at + 1].strip()
        posted = subprocess.run(["bash", "-c", curl], capture_output=True, text=True, timeout=30, check=False)
        assert posted.returncode == 0, posted.stderr
        assert json.loads(posted.stdout)["accepted"] == 1, posted.stdout  # the printed curl's token is valid
        at = run.wait_line("a token for any home", timeout=5)
        assert run.lines[at + 1].strip().startswith("make token HOME=home-000123 [AUDIENCE=read]")
        assert f"STACK_DATA_DIR={tmp_path}" in run.lines[at + 1]
        consumer_url = next(w for w in run.lines if w.strip().startswith("consumer ")).split()[1]
        consumer_url = consumer_url.removesuffix("/v1/homes/...")
        token = _make_token(tmp_path, "home-000123", "read")
        code, body = _status(consumer_url, "home-000123", token)
        assert code == 200, body
        assert json.loads(body)["home_id"] == "home-000123"
        assert _status(consumer_url, "home-000124", token)[0] == 403  # a token for one home reads that home
    finally:
        rc, err = run.finish(timeout=240)
    out = run.lines
    assert rc == 0, err[-3000:]
    assert f"data      {tmp_path} (fresh; --keep-data keeps it)" in out
    assert f"logs      {tmp_path / 'logs'} (one file per process)" in out
    assert not (tmp_path / "azurite" / "previous-run").exists()
    assert not (tmp_path / "eventhubs" / "previous-run").exists()
    table = out[next(i for i, line in enumerate(out) if line.startswith("columns: ")) :]
    table = [line for line in table if not line.startswith("home-000001 status:")]
    assert max(len(line) for line in table) <= 100, "\n".join(line for line in table if len(line) > 100)
    counts = _final_counts(out)
    assert counts["received"] > 3000
    assert counts["acknowledged"] == counts["received"], "every reading the producer took was acknowledged"
    assert counts["rolled up"] == counts["acknowledged"], "the final line comes once the consumer drained"
    assert counts["consumed"] >= counts["acknowledged"]
    assert any(line.startswith("drained: every acknowledged reading rolled up") for line in out), out[-8:]
    status = next(line for line in out if line.startswith("home-000001 status:"))
    assert '"home_id":"home-000001"' in status.replace(" ", "")
    assert _leftovers(tmp_path) == "", "the stack left processes running"


def test_a_taken_port_fails_at_once_naming_it(tmp_path: Path) -> None:
    """A second ``make run`` on a port in use (say the first stack's producer) must not say "stack is up"."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ports = [str(free_port()) for _ in range(4)]
        started = time.monotonic()
        run = StackRun("--amqp-port", ports[0], "--admin-port", ports[1], "--blob-port", ports[2],
                       "--consumer-port", ports[3], "--producer-port", str(port),
                       "--data-dir", str(tmp_path))  # fmt: skip
        rc, err = run.finish(timeout=60)
        elapsed = time.monotonic() - started
    assert rc == 2, (err, run.lines)
    assert f"port {port} (producer) is already in use" in err
    assert "--free-ports" in err
    assert not any("stack is up" in line for line in run.lines)
    assert elapsed < 10, f"took {elapsed:.1f}s"
    assert _leftovers(tmp_path) == ""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP, signal.SIGTERM], ids=lambda s: s.name)
def test_a_signal_during_start_up_stops_everything_promptly(tmp_path: Path, sig: signal.Signals) -> None:
    run = StackRun("--free-ports", "--data-dir", str(tmp_path), "--homes", "10", "--rate", "10")
    try:
        run.wait_line("logs", timeout=30)
        deadline = time.monotonic() + 30  # the emulator has started: its process names the data dir
        while not _leftovers(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _leftovers(tmp_path), "the emulator did not start"
        sent = time.monotonic()
        run.proc.send_signal(sig)
    finally:
        rc, err = run.finish(timeout=60)
    took = time.monotonic() - sent
    assert rc == 128 + sig, (rc, err[-2000:], run.lines)
    assert any(f"interrupted ({sig.name}) during start-up" in line for line in run.lines)
    assert not any("stack is up" in line for line in run.lines)
    assert took < 8, f"stopped {took:.1f}s after {sig.name}"
    assert _leftovers(tmp_path) == "", "the stack left processes running"
