"""Approvals (PRODUCT.md §9): requests, decisions and the signed approval credential.

`credential` is pure (no database, framework or I/O): the control plane issues credentials
with it and the reference agent verifies them with it.
"""
