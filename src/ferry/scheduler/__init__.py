"""The scheduler's loops (the FTS actions), each a small service with ``run_once()``."""
