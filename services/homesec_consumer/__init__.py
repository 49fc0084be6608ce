"""homesec_consumer service."""
