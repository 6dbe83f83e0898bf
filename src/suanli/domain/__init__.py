"""Pure domain rules: no I/O, no imports from services, adapters or entry points."""
