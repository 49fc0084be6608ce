# Producer (ingestion service) targets.
.PHONY: bench-producer bench-producer-duplicates bench-producer-resend-memory bench-producer-payload bench-producer-ab bench-producer-reference producer-token

bench-producer: setup ## producer throughput vs a bare ASGI baseline through the emulator (docs/benchmarks.md)
	$(PY) bench/producer_throughput.py --repeat 3 --write docs/benchmarks.md $(BENCH_PRODUCER_ARGS)

bench-producer-duplicates: setup ## duplicates in the hub under the throttled 1 -> 2 scale-out, before/after per-reading acks
	$(PY) bench/producer_duplicates.py --write docs/benchmarks.md $(BENCH_PRODUCER_DUPLICATES_ARGS)

bench-producer-resend-memory: setup ## CPU per reading of the producer's resend memory on the buffer path (off vs on)
	$(PY) bench/producer_resend_memory.py --write docs/benchmarks.md $(BENCH_PRODUCER_RESEND_MEMORY_ARGS)

producer-token: setup-python ## issue a bearer token: make producer-token HOMES="home-1 home-2" [AUDIENCE=read] [ROLE=operator] (keys from env)
	$(PY) -m homesec_producer.cli $(foreach h,$(HOMES),--home $(h)) $(if $(AUDIENCE),--audience $(AUDIENCE)) $(if $(ROLE),--role $(ROLE))

bench-producer-payload: setup-python ## producer: CPU to frame a batch at send, SDK encode_payload vs the payload accelerator
	$(PY) bench/producer_payload.py --write docs/benchmarks.md $(BENCH_PRODUCER_PAYLOAD_ARGS)

BENCH_PRODUCER_AB_ARGS ?= --a PUBLISH_LINGER_SECONDS=0 --b PUBLISH_LINGER_SECONDS=0.01 --pin
bench-producer-ab: setup ## producer: two configurations A/B, interleaved pairs, producer on a core of its own
	$(PY) bench/producer_ab.py --write docs/benchmarks.md $(BENCH_PRODUCER_AB_ARGS)

BENCH_PRODUCER_REFERENCE_ARGS ?=
bench-producer-reference: setup ## producer: a reference commit's own benchmark re-run now vs its recorded figures (machine drift)
	$(PY) bench/producer_reference.py --write docs/benchmarks.md $(BENCH_PRODUCER_REFERENCE_ARGS)
