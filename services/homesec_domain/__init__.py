"""Pure domain code for homesec-telemetry: models, validation, the event codec, partitioning and the
aggregation fold, plus the services' shared process set-up (``runtime``, ``accelerators``). Imports no
Azure SDK and no web framework.

The fold's modules may run compiled (mypyc) when the consumer enables that accelerator at start-up; see
``homesec_domain.native``."""
