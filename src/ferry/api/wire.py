"""The numbers, flags and error texts the API's JSON bodies take, shared by the HTTP API's
schemas (``ferry.api.schemas``) and the agent protocol's records (``ferry.api.protocol``)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, Strict

from ferry.domain.transfers import ERROR_TEXT_MAX, clip_error

# A whole number as the API takes it: a JSON integer (not true, 1.0 or "1"), and one that a
# database column holds (a larger one reached SQLite and failed there: a 500).
INT64_MAX = 2**63 - 1
# A field's own bound goes inside Annotated[Whole, Field(le=...)]: as `Whole = Field(le=...)`
# this INT64_MAX bound, applied after it, replaced it (priority 9 was accepted).
Whole = Annotated[int, Strict(), Field(le=INT64_MAX)]
Real = Annotated[float, Strict()]  # an integer, or a number with a fraction: not true
Flag = Annotated[bool, Strict()]

# An error text an agent reports: cut to what is kept, never a reason to refuse the report.
ErrorText = Annotated[
    str, AfterValidator(clip_error), Field(description=f"cut to {ERROR_TEXT_MAX} characters")
]
