"""A snapshot written by the previous version (its homes in packed state format 2) is migrated on read."""

from __future__ import annotations

from homesec_consumer import snapshot
from homesec_consumer.partition import PartitionState
from homesec_domain.rollup import FORMAT_VERSION, unpack

from ..domain.packed_v2_writer import pack_v2
from .fakes import MemoryRollupStore
from .test_processor import blobs, events, make, straight


async def test_a_snapshot_of_the_previous_version_is_migrated_on_read() -> None:
    """The next owner reads the format-2 homes, carries on exactly, and its own snapshot holds format 3."""
    specs = [(f"h{i % 3}", m) for m in range(0, 90, 3) for i in range(3)]
    reference = await straight(specs)
    store = MemoryRollupStore()
    first, _, _, _, _ = make(store)
    evs = events(specs)
    await first.handle_batch("0", evs[:40])
    await first.flush_all()
    body, etag = store.blobs["state/0.state"]
    header, homes = snapshot.decode(body)
    old = {home_id: pack_v2(unpack(home_id, packed)) for home_id, packed in homes.items()}
    store.blobs["state/0.state"] = (snapshot.encode(header, old), etag)
    second, _, _, _, _ = make(store, initial=False)
    await second.handle_batch("0", evs[30:])  # from a checkpoint older than the snapshot
    await second.flush_all()
    assert blobs(store) == blobs(reference)
    assert {packed[0] for packed in store.homes().values()} == {FORMAT_VERSION}
    part: PartitionState = second.partitions["0"]
    assert {packed[0] for packed in part.homes.values()} == {FORMAT_VERSION}
