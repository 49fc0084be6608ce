from __future__ import annotations

from azure.eventhub._buffered_producer._partition_resolver import PartitionResolver, generate_hash_code
from homesec_domain.partitioning import partition_for, partition_hash
from hypothesis import given, settings
from hypothesis import strategies as st


@settings(max_examples=2000)
@given(st.text(max_size=80))
def test_hash_equals_the_sdk(key: str) -> None:
    assert partition_hash(key) == generate_hash_code(key)  # type: ignore[no-untyped-call]


@given(st.from_regex(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", fullmatch=True), st.integers(1, 32))
def test_partition_equals_the_sdk_resolver(home: str, count: int) -> None:
    ids = [str(i) for i in range(count)]
    resolver = PartitionResolver(ids)  # type: ignore[no-untyped-call]
    assert partition_for(home, ids) == resolver.get_partition_id_by_partition_key(home)  # type: ignore[no-untyped-call]


def test_spreads_homes_over_all_partitions() -> None:
    ids = [str(i) for i in range(16)]
    counts = {pid: 0 for pid in ids}
    for i in range(16_000):
        counts[partition_for(f"home-{i:06d}", ids)] += 1
    assert min(counts.values()) > 500, counts


def test_empty_key_and_empty_partitions() -> None:
    assert partition_hash("") == 0
    try:
        partition_for("h", [])
    except ValueError:
        pass
    else:
        raise AssertionError("expected ValueError")
