"""The re-send window against a reference model of three plain lists: any sequence of adds and trims leaves
the same entries in the same order, it holds exactly what the model holds, and it packs and unpacks to
itself, whichever form (steps or wide) its arrivals take."""

from __future__ import annotations

from dataclasses import dataclass, field

from homesec_domain.dedup import Window
from homesec_domain.fold import HomeState
from homesec_domain.rollup import pack, unpack
from hypothesis import given, settings
from hypothesis import strategies as st

I64 = st.integers(-(2**63), 2**63 - 1)


@dataclass
class Model:
    arrived: list[int] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    keys: list[int] = field(default_factory=list)

    def holds(self, idh: int, keyh: int) -> bool:
        return idh in self.ids or (keyh != 0 and keyh in self.keys)

    def add(self, arrived: int, idh: int, keyh: int) -> None:
        self.arrived.append(arrived)
        self.ids.append(idh)
        self.keys.append(keyh)

    def trim(self, horizon: int) -> None:
        keep = [i for i, at in enumerate(self.arrived) if at >= horizon]
        self.arrived = [self.arrived[i] for i in keep]
        self.ids = [self.ids[i] for i in keep]
        self.keys = [self.keys[i] for i in keep]


# Steps mostly small and forward (the steps form), sometimes past u16 or backwards (the wide form).
STEPS = st.one_of(st.integers(0, 3_000), st.integers(0, 70_000), st.integers(-5_000, 0))
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("add"), STEPS, I64, st.one_of(st.just(0), I64)),
        st.tuples(st.just("trim"), st.integers(0, 200_000)),
    ),
    max_size=80,
)


def _same(window: Window, model: Model) -> None:
    assert window == Window.of(model.arrived, model.ids, model.keys)
    assert window.arrived == model.arrived
    assert len(window) == len(model.ids)


@settings(max_examples=300, deadline=None)
@given(OPS, st.integers(0, 2**40))
def test_adds_and_trims_keep_what_the_reference_keeps(ops: list[tuple[object, ...]], t0: int) -> None:
    window, model, now = Window(), Model(), t0
    for op in ops:
        if op[0] == "add":
            _, step, idh, keyh = op
            assert isinstance(step, int) and isinstance(idh, int) and isinstance(keyh, int)
            now += step
            assert window.holds(idh, keyh) == model.holds(idh, keyh)
            window.add(now, idh, keyh)
            model.add(now, idh, keyh)
        else:
            back = op[1]
            assert isinstance(back, int)
            window.trim(now - back)
            model.trim(now - back)
        _same(window, model)
        for idh, keyh in zip(model.ids, model.keys, strict=True):
            probe = idh ^ 1  # another id: held only through the key, or when the window has it too
            assert window.holds(idh, 0)
            assert window.holds(probe, keyh) == model.holds(probe, keyh)
        state = HomeState("home-1", arrived=max(model.arrived, default=now))
        state.window = window
        assert unpack("home-1", pack(state)).window == window


def test_only_aligned_matches_count() -> None:
    # The id 0x0101...01 shifted by one byte sits across two entries: a byte search finds it, unaligned.
    first, second = 0x0100_0000_0000_0000, 0x0001_0101_0101_0101
    window = Window.of([1, 2], [first, second], [0, 0])
    straddling = int.from_bytes(bytes(window.ids)[1:9], "little", signed=True)
    assert straddling not in (first, second)
    assert not window.holds(straddling, 0)
    assert window.holds(first, 0) and window.holds(second, 0)


def test_a_key_of_zero_is_no_key() -> None:
    window = Window.of([1], [5], [0])
    assert not window.holds(6, 0)
    assert window.holds(6, 7) is False
    window.add(2, 8, 7)
    assert window.holds(6, 7)


def test_a_step_past_u16_switches_to_the_wide_form_and_back_after_a_trim() -> None:
    window = Window.of([0, 10], [1, 2], [0, 0])
    window.add(80_000, 3, 0)
    assert window.wide is not None and window.arrived == [0, 10, 80_000]
    window.trim(50_000)
    assert window.wide is None and window.arrived == [80_000] and window.holds(3, 0)
    assert not window.holds(1, 0)
