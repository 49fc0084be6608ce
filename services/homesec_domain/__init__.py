"""Pure domain code for homesec-telemetry: models, validation, the event codec, partitioning and the
aggregation fold, plus the services' shared process set-up (``runtime``). Imports no Azure SDK and no
web framework.

The fold's modules may load compiled (mypyc) from ``_compiled/`` when it matches these sources exactly;
see ``homesec_domain.native``."""

from homesec_domain.native import activate

activate(__path__)
