"""What ``list_transfers`` keeps, as SQL: a ``TransferFilter``'s conditions."""

from __future__ import annotations

import json

from sqlalchemy import ColumnElement, Select, Text, and_, cast, or_, select

from ferry.store import tables as t
from ferry.store.abc import TransferFilter


def conditions(where: TransferFilter) -> list[ColumnElement[bool]]:
    """The conditions a transfer must meet to be kept by ``where`` (none: every one)."""
    c = t.transfers.c
    kept: list[ColumnElement[bool]] = []
    for column, value in (
        (c.status, where.status.value if where.status else None),
        (c.kind, where.kind),
        (c.submitter, where.submitter),
        (c.scope, where.scope),
        (c.schedule_kind, where.schedule_kind),
    ):
        if value is not None:
            kept.append(column == value)
    if where.scopes is not None:
        kept.append(c.scope.in_(where.scopes))
    if where.label is not None:
        kept.append(c.id.in_(_labeled(where.label)))
    if where.text is not None:
        kept.append(text_matches(where.text))
    return kept


def _labeled(label: str) -> Select[tuple[str]]:
    labels = t.transfer_labels.c
    return select(labels.transfer_id).where(labels.label == label)


def text_matches(text: str) -> ColumnElement[bool]:
    """A transfer whose id starts with ``text``, that has it as a label, or whose sources or
    destination hold it (ASCII letters in either case). The text is matched literally: ``%``
    and ``_`` are escaped. The sources are read as their list's JSON, so they are searched
    for the text as JSON writes it (quotes, backslashes and non-ASCII letters escaped).

    No index serves a search inside the paths: a miss reads every transfer. The spec's stored
    text is searched first, which costs a fraction of reading each spec's JSON; only the
    transfers whose spec holds the text anywhere (in its options, say) have it read."""
    c = t.transfers.c
    quoted = json.dumps(text)[1:-1]
    in_paths = and_(
        cast(c.spec, Text).icontains(quoted, autoescape=True),
        or_(
            c.spec["destination"].as_string().icontains(text, autoescape=True),
            c.spec["sources"].as_string().icontains(quoted, autoescape=True),
        ),
    )
    return or_(c.id.startswith(text.lower(), autoescape=True), c.id.in_(_labeled(text)), in_paths)
