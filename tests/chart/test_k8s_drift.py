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


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_the_documented_overlay_builds(tmp_path: Path) -> None:
    """docs/aks.md's kustomize overlay over k8s/workload-identity builds and sets images and IDs."""
    doc = (ROOT / "docs" / "aks.md").read_text()
    body = doc.split("cat > my-overlay/kustomization.yaml <<EOF\n", 1)[1].split("\nEOF\n", 1)[0]
    env = {
        "$ACR": "myacr",
        "$CLIENT_ID": "99999999-8888-7777-6666-555555555555",
        "$EH_FQDN": "myns.servicebus.windows.net",
        "$BLOB_URL": "https://myst.blob.core.windows.net/",
    }
    for name, value in env.items():
        body = body.replace(name, value)
    shutil.copytree(ROOT / "k8s" / "workload-identity", tmp_path / "k8s" / "workload-identity")
    (tmp_path / "my-overlay").mkdir()
    (tmp_path / "my-overlay" / "kustomization.yaml").write_text(body)
    built = subprocess.run(
        ["kubectl", "kustomize", str(tmp_path / "my-overlay")], check=True, capture_output=True, text=True
    ).stdout
    text = yaml.safe_dump_all(yaml.safe_load_all(built))
    assert "myacr.azurecr.io/homesec-producer:0.1.0" in text
    assert "myacr.azurecr.io/homesec-consumer:0.1.0" in text
    assert "00000000-0000-0000-0000-000000000000" not in text and env["$CLIENT_ID"] in text
    assert "homesec-ehns" not in text and "homesecst" not in text
