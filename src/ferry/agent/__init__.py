"""The transfer agent daemon: registers, leases work in batches, copies, reports."""
