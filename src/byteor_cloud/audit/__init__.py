"""The audit log: hash-chained per org, written in the same transaction as each change."""
