"""Idempotent POSTs: a repeated `Idempotency-Key` replays the first response, per credential.

`rules` holds the pure decisions (which keys are valid, what a request's fingerprint is,
which responses are kept), `responses` the sealed (encrypted) form of a kept response,
`store` the SQL of the records, and `jobs` the hourly removal of expired records. The
ASGI middleware that applies them to requests is `api/idempotency.py`.
"""
