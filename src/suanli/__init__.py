"""suanli (算力): a compute-power internet."""

__version__ = "0.1.0"
