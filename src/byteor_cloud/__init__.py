"""ByteOr Cloud: the control plane for governed real-time data pipelines."""

__version__ = "0.1.0"
