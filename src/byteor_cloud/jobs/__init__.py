"""The job queue mechanics: registry, enqueue, claim with leases, retries, periodic jobs.

No job type lives here; each context registers its handlers (`<context>/jobs.py`).
"""
