"""Framework-free building blocks shared by every context: errors, ids, clock, pagination."""
