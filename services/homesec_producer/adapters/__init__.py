"""Adapters of the producer's ports to real services."""
