"""Operations: the Prometheus exposition, open or behind the ``--metrics-token`` bearer."""

from __future__ import annotations

import secrets

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4

from ferry.errors import Unauthenticated
from ferry.server.deps import CredentialsDep, StateDep

router = APIRouter(tags=["operations"])


# Out of the OpenAPI document: it is no JSON operation of the API, and a scraper is configured
# with its address, not generated from a schema.
@router.get("/metrics", include_in_schema=False)
async def metrics(state: StateDep, credentials: CredentialsDep) -> Response:
    """Text exposition format. Without a metrics token in the settings anyone may scrape it;
    with one, only a bearer of that token (not an API token: a scraper holds no role)."""
    expected = state.settings.metrics_token
    if expected is not None:
        given = credentials.credentials if credentials is not None else ""
        if not secrets.compare_digest(given.encode(), expected.get_secret_value().encode()):
            raise Unauthenticated("the metrics token is required")
    body = await state.metrics.exposition()
    # The text format 0.0.4, which every Prometheus reads (Debian's 2.42 among them); the
    # names are all of its alphabet, so the body is the same as version 1.0.0's.
    return Response(body, media_type=CONTENT_TYPE_PLAIN_0_0_4)
