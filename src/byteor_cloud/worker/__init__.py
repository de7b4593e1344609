"""The worker service: the job loop, its health/metrics app, and how it starts and stops."""
