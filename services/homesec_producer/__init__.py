"""homesec_producer service."""
