"""Tenancy: organizations, projects, environments, memberships, org API keys, and the
authorization that turns a principal and a path into a Scope."""
