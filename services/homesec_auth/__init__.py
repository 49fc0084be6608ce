"""Bearer tokens shared by the producer (ingest) and the consumer (reads): JWT verification, keys, errors.

Imports only PyJWT, cryptography and the standard library (no web framework, no Azure).
"""
