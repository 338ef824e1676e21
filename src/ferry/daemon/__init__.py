"""The daemon core shared by ``ferry server`` and ``ferry agent``."""
