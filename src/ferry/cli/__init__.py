"""The ``ferry`` command: daemons and a thin layer over ``ferry.client``."""
