"""The SQL store: SQLite (embedded default, WAL) and PostgreSQL, through SQLAlchemy 2."""

from __future__ import annotations

from ferry.store.sql_audit import AuditMixin
from ferry.store.sql_deadlines import DeadlinesMixin
from ferry.store.sql_deletions import DeletionsMixin
from ferry.store.sql_dispatch import DispatchMixin
from ferry.store.sql_gauges import GaugesMixin
from ferry.store.sql_grants import GrantsMixin
from ferry.store.sql_links import LinksMixin
from ferry.store.sql_outcomes import OutcomesMixin
from ferry.store.sql_passive import PassiveMixin
from ferry.store.sql_pauses import PausesMixin
from ferry.store.sql_registry import RegistryMixin
from ferry.store.sql_runs import RunsMixin
from ferry.store.sql_transfers import TransfersMixin
from ferry.store.sql_users import UsersMixin


class SqlStore(
    PassiveMixin,
    RegistryMixin,
    UsersMixin,
    GrantsMixin,
    AuditMixin,
    PausesMixin,
    TransfersMixin,
    OutcomesMixin,
    RunsMixin,
    DeletionsMixin,
    DeadlinesMixin,
    DispatchMixin,
    LinksMixin,
    GaugesMixin,
):
    """Implements ``ferry.store.abc.Store``; see there for the contract of each method."""
