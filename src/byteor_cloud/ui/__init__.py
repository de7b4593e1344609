"""The operator web UI: server-rendered pages, our own CSS, no third-party assets."""
