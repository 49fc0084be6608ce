"""Pure domain code for homesec-telemetry: models, validation, the event codec, partitioning, the alarm
rules and the aggregation fold. Imports only the standard library, pydantic and orjson (and
``typing_extensions``, which pydantic needs for ``TypedDict`` on Python 3.11): no Azure SDK, no web
framework, no metrics or tracing (the services' shared process set-up is ``homesec_runtime``).

The fold's modules may run compiled (mypyc) when the consumer enables that accelerator at start-up; see
``homesec_runtime.native``."""
