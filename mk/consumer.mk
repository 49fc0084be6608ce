# Consumer (rollups) targets.
.PHONY: bench-consumer bench-alarms consumer-progress consumer-home

bench-consumer: setup ## consumer: memory at 100k homes, per-event cost (compiled vs plain fold), events/s vs a bare SDK receive loop
	$(PY) bench/consumer_memory.py --homes 100000
	$(PY) bench/consumer_memory.py --homes 100000 --resend-window 120
	$(PY) bench/consumer_stages.py --repeat 3
	$(PY) bench/consumer_throughput.py --homes 200 --minutes 60 --repeat 3 --plain $(BENCH_CONSUMER_ARGS)
	$(PY) bench/consumer_throughput.py --homes 1000 --minutes 12 --repeat 3 --interleaved --plain $(BENCH_CONSUMER_ARGS)

bench-alarms: setup ## alarm latency, status freshness, Blob requests per home per hour, memory per home (real stack)
	$(PY) bench/alarms.py --write docs/benchmarks.md $(BENCH_ALARMS_ARGS)

consumer-progress: setup-python ## live consumer progress: make consumer-progress [CONSUMER_ADMIN_URL=http://127.0.0.1:9091]
	$(PY) -m homesec_consumer.cli progress --url $(or $(CONSUMER_ADMIN_URL),http://127.0.0.1:9091) --watch 2

consumer-home: setup-python ## a home's rollup: make consumer-home HOME_ID=home-000001 [CONSUMER_URL=...] (read token: HOMESEC_READ_TOKEN)
	$(PY) -m homesec_consumer.cli home $(HOME_ID) --url $(or $(CONSUMER_URL),http://127.0.0.1:8081)
