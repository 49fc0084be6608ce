"""Process plumbing shared by both services: settings loading and configuration errors
(``config_errors``), logging (``logs``), tracing (``tracing``), garbage-collector tuning (``gc_tuning``),
the accelerator switch (``accelerators``) and the compiled fold's loader (``native``), the Event Hubs
transport options (``transport``), the process and interpreter metrics (``process_metrics``). Nothing here
is built at import time."""
