"""``status_doc``: the status blob, and without the packed state the status that reads answer."""

from __future__ import annotations

import base64

import pytest
from homesec_domain import rollup
from homesec_domain.fold import FoldConfig
from homesec_domain.models import SensorType
from homesec_domain.rollup import status_doc, unpack

from .folding import fold_all, reading


def test_without_the_packed_state_the_status_is_the_same_and_nothing_is_packed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    readings = [reading("smoke-1", SensorType.SMOKE, 60 * i, state="ok", seq=i) for i in range(3)]
    state = fold_all(readings, FoldConfig())
    full = status_doc(state)
    assert unpack(state.home_id, base64.b64decode(full["state"])) == state

    def no_packing(_: object) -> bytes:
        raise AssertionError("the state was packed")

    monkeypatch.setattr(rollup, "pack", no_packing)
    view = status_doc(state, packed=False)
    assert "state" not in view
    assert view == {k: v for k, v in full.items() if k != "state"}
