"""Data movement: storages through fsspec, verified copies, tree listings."""
