"""Authoring and versioning: drafts, immutable content-hashed versions, config bundles."""
