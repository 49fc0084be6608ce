"""The real producer app (auth, validation, buffer, batching, AMQP encoding) with a publisher that encodes
each batch exactly like the Event Hubs adapter but sends nothing: separates the producer's own CPU cost
from the AMQP I/O and the emulator. ``python bench/producer_offline_app.py --port P`` (keys from env).
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence

import uvicorn
from azure.eventhub import EventDataBatch
from azure.eventhub._pyamqp.aio import _sender_async
from homesec_domain.validation import AcceptedReading
from homesec_producer.adapters import accelerated_encoding, accelerated_payload
from homesec_producer.adapters.batching import AddToBatch, add_public
from homesec_producer.compose import build_app
from homesec_producer.runner import AdminServer, admin_config, serve, server_config
from homesec_producer.settings import ProducerSettings
from homesec_runtime.gc_tuning import tune_gc
from pydantic import SecretStr


class EncodeOnlyPublisher:
    """Builds and encodes the batch message like ``EventHubsPublisher`` and the SDK's sender link (both
    accelerators unless ``HOMESEC_PRODUCER_ACCELERATORS=off``); 1 ms simulated round trip."""

    def __init__(self, settings: ProducerSettings, partitions: int = 16) -> None:
        self._ids = [str(i) for i in range(partitions)]
        accelerated, _ = accelerated_encoding.load(settings.accelerators)
        accelerated_payload.load(settings.accelerators)
        self._add: AddToBatch = accelerated or add_public

    async def partition_ids(self) -> Sequence[str]:
        return self._ids

    async def publish(self, partition_id: str, readings: Sequence[AcceptedReading]) -> None:
        batch = EventDataBatch(max_size_in_bytes=1_000_000, partition_id=partition_id)
        for reading in readings:
            self._add(batch, reading)
        _sender_async.__dict__["encode_payload"](bytearray(), batch._message)  # what the sender link calls
        await asyncio.sleep(0.001)

    async def close(self) -> None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    settings = ProducerSettings(
        host="127.0.0.1", port=args.port, admin_host="127.0.0.1", eventhub_connection_string=SecretStr("Endpoint=sb://offline/;SharedAccessKeyName=a;SharedAccessKey=b;EntityPath=none"),
        buffer_capacity_readings=200_000, log_level="warning",
    )  # fmt: skip
    apps = build_app(settings, publisher=EncodeOnlyPublisher(settings))
    config = server_config(settings, apps)  # uvicorn configured as ``python -m homesec_producer`` does
    admin = AdminServer(admin_config(settings, apps))
    tune_gc(settings.gc_gen0_threshold)  # and its garbage collector: the producer's own cost, as deployed
    with asyncio.Runner(loop_factory=config.get_loop_factory()) as runner:
        runner.run(serve(uvicorn.Server(config), admin))


if __name__ == "__main__":
    main()
