"""Ferry: a data transfer scheduler.

Submit transfers of files or directory trees between storages; a scheduler service keeps every
transfer in a database and hands the work to transfer agents that copy, verify and report back.
"""

from ferry.errors import FerryError

__all__ = ["FerryError", "__version__"]

__version__ = "0.1.0"
