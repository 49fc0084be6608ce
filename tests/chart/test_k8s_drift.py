"""k8s/ and deploy/ are generated from the chart and must never drift from it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from scripts.k8s import render
from tests.chart.support import ROOT, validate


def test_committed_files_match_a_fresh_render() -> None:
    problems = render.drift()
    assert problems == [], "k8s/ or deploy/ drifted from the chart; run `make k8s` and commit:\n" + "\n".join(
        problems
    )


def test_drift_check_notices_edits_and_stale_files(tmp_path: Path) -> None:
    """The check really compares: an edited manifest and a stray file are both reported."""
    for rel in ("charts", "k8s", "deploy"):
        shutil.copytree(ROOT / rel, tmp_path / rel)
    assert render.drift(tmp_path) == []
    deployment = tmp_path / "k8s/base/deployment-producer.yaml"
    deployment.write_text(deployment.read_text().replace("cpu: 500m", "cpu: 400m"))
    (tmp_path / "k8s/base/extra.yaml").write_text("kind: ConfigMap\n")
    problems = render.drift(tmp_path)
    assert "k8s/base/deployment-producer.yaml" in problems
    assert any(p.startswith("k8s/base/extra.yaml") for p in problems)
    render.write(tmp_path)
    assert render.drift(tmp_path) == []


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("variant", [v.directory for v in render.VARIANTS])
def test_kustomize_builds_the_same_objects(variant: str) -> None:
    built = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / variant)], check=True, capture_output=True, text=True
    ).stdout
    objects = [doc for doc in yaml.safe_load_all(built) if doc]
    values = next(v.values for v in render.VARIANTS if v.directory == variant)
    expected = render.render_chart(values)
    key = lambda o: (o["kind"], o["metadata"]["name"])  # noqa: E731
    assert sorted(objects, key=key) == sorted(expected, key=key)
    for obj in objects:
        validate(obj)
        assert obj["metadata"]["namespace"] == "homesec"
