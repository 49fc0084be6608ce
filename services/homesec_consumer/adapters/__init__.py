"""Thin SDK adapters behind the consumer's ports (Blob storage, Event Hubs)."""
