"""What the typed clients (``Client``, ``AsyncClient``) share, with no I/O: answers read into
the API's schemas."""

from __future__ import annotations

from typing import Any

from ferry.api.schemas import (
    AgentInvitation,
    AgentPublic,
    AgentStatsPublic,
    CancelResult,
    ChannelPublic,
    ObjectResult,
    Outcomes,
    PassiveCreated,
    PauseResult,
    PlanPublic,
    RunPublic,
    ScopePublic,
    TransferList,
    TransferPublic,
)
from ferry.client._base import BaseClient


class TypedClient(BaseClient):
    parse_transfer = staticmethod(TransferPublic.model_validate)
    parse_list = staticmethod(TransferList.model_validate)
    parse_outcomes = staticmethod(Outcomes.model_validate)
    parse_cancel = staticmethod(CancelResult.model_validate)
    parse_pause = staticmethod(PauseResult.model_validate)
    parse_agent = staticmethod(AgentPublic.model_validate)
    parse_plan = staticmethod(PlanPublic.model_validate)

    parse_channel = staticmethod(ChannelPublic.model_validate)
    parse_invitation = staticmethod(AgentInvitation.model_validate)
    parse_passive = staticmethod(PassiveCreated.model_validate)
    parse_object_result = staticmethod(ObjectResult.model_validate)
    parse_scope = staticmethod(ScopePublic.model_validate)
    parse_agent_stats = staticmethod(AgentStatsPublic.model_validate)

    @staticmethod
    def parse_runs(data: Any) -> list[RunPublic]:
        return [RunPublic.model_validate(item) for item in data]

    @staticmethod
    def parse_agents(data: Any) -> list[AgentPublic]:
        return [AgentPublic.model_validate(item) for item in data]

    @staticmethod
    def parse_channels(data: Any) -> list[ChannelPublic]:
        return [ChannelPublic.model_validate(item) for item in data]

    @staticmethod
    def parse_scopes(data: Any) -> list[ScopePublic]:
        return [ScopePublic.model_validate(item) for item in data]


def merge_outcome_pages(pages: list[Outcomes]) -> Outcomes:
    first = pages[0]
    objects = [o for page in pages for o in page.objects]
    return first.model_copy(update={"objects": objects, "next_cursor": None})
