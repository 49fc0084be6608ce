"""The chart's README.md is generated from values.yaml's ``# --`` comments and must be current."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from scripts.k8s import chart_readme
from tests.chart.support import CHART

SAMPLE = """\
# A section comment (not documentation).
# -- Plain string.
name: telemetry
# -- A map documented as a whole:
# its children are its default.
resources:
  requests:
    cpu: 500m
nested:
  # -- A documented child, with a | pipe and <angle> brackets.
  count: 3
  hosts:
    # -- Inside a list item: never listed.
    - host: example.com
      paths:
        - path: /
  # -- Back out of the list.
  enabled: false
# -- Null, typed from the schema.
ports: null
"""
SCHEMA = '{"properties": {"ports": {"type": ["array", "null"]}, "nested": {"properties": {}}}}'
CHART_YAML = "name: sample\ndescription: A sample.\nversion: 1.0.0\nappVersion: '2'\n"


def _sample_chart(tmp_path: Path, values: str = SAMPLE) -> Path:
    (tmp_path / "values.yaml").write_text(values)
    (tmp_path / "values.schema.json").write_text(SCHEMA)
    (tmp_path / "Chart.yaml").write_text(CHART_YAML)
    return tmp_path


def test_committed_readme_is_current() -> None:
    assert (CHART / "README.md").read_text() == chart_readme.render(), "run `make chart-readme` and commit"


def test_documented_keys_follow_nesting_and_skip_list_items() -> None:
    keys = chart_readme.documented_keys(SAMPLE)
    assert [(".".join(k.path), k.description) for k in keys] == [
        ("name", "Plain string."),
        ("resources", "A map documented as a whole: its children are its default."),
        ("nested.count", "A documented child, with a | pipe and <angle> brackets."),
        ("nested.enabled", "Back out of the list."),
        ("ports", "Null, typed from the schema."),
    ]


def test_table_rows(tmp_path: Path) -> None:
    text = chart_readme.render(_sample_chart(tmp_path, SAMPLE.replace("  hosts:", "  # -- Hosts.\n  hosts:")))
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert rows == [
        '| name | string | `"telemetry"` | Plain string. |',
        '| resources | object | `{"requests":{"cpu":"500m"}}` | A map documented as a whole: its children '
        "are its default. |",
        "| nested.count | int | `3` | A documented child, with a \\| pipe and &lt;angle&gt; brackets. |",
        '| nested.hosts | list | `[{"host":"example.com","paths":[{"path":"/"}]}]` | Hosts. |',
        "| nested.enabled | bool | `false` | Back out of the list. |",
        "| ports | list | `null` | Null, typed from the schema. |",
    ]


def test_an_undocumented_value_is_an_error(tmp_path: Path) -> None:
    """nested.hosts has no ``# --`` comment, itself or on a parent."""
    with pytest.raises(chart_readme.UndocumentedValuesError) as caught:
        chart_readme.render(_sample_chart(tmp_path))
    assert caught.value.paths == ["nested.hosts"]


def test_check_fails_on_a_stale_readme_and_write_fixes_it(tmp_path: Path) -> None:
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    assert chart_readme.main(["--check", "--chart", str(chart)]) == 0
    values = chart / "values.yaml"
    values.write_text(values.read_text().replace("# -- Event hub (entity) name.", "# -- The event hub."))
    assert chart_readme.main(["--check", "--chart", str(chart)]) == 1
    assert chart_readme.main(["--chart", str(chart)]) == 0
    assert '| eventHubs.name | string | `"telemetry"` | The event hub. |' in (chart / "README.md").read_text()
    assert chart_readme.main(["--check", "--chart", str(chart)]) == 0
