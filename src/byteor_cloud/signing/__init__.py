"""Org signing keys: Ed25519 pairs that sign approval credentials and bundle manifests."""
