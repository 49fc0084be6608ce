"""Pure domain code for homesec-telemetry: models, validation, the event codec, partitioning and the
aggregation fold. Imports no Azure SDK and no web framework."""
