"""Deployments: plans, the governed rollout to agents, rollbacks (PRODUCT.md §9)."""
