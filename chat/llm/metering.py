"""LLM metering: which calls count against the organization's daily token budget, the check
made before such a call and the usage recorded after it.

Metered providers (litellm; not the in-process offline answerer) are gated by the
organization's daily token budget: once today's usage (UTC) reaches it, no call is made.
Every metered call's usage is added to the day's meter as soon as the provider returns; a
provider that reports no usage, or a stream cut short, is metered by estimate (~4
characters a token), never for free. The meter itself (one `LLMUsageDay` row per
organization and UTC day, its 80 %/100 % alerts) is the organization's:
`organizations.services.llm_usage_record` adds to it, `organizations.selectors
.llm_budget_status` reads it. Per-answer figures (tokens, cost) are stored on the answer.
"""

from __future__ import annotations

from chat.llm.types import Completion, CompletionRequest, LLMProvider
from organizations import selectors as organization_selectors
from organizations import services as organization_services
from organizations.models import Organization
from organizations.selectors import LLMBudgetStatus


def is_metered(provider: LLMProvider) -> bool:
    return getattr(provider, "metered", True)  # an unknown provider is assumed to cost money


def budget_exhausted(*, organization: Organization) -> LLMBudgetStatus | None:
    """Today's budget status when the budget is used up (no metered call may be made), else
    None. An unlimited budget costs no query."""
    if organization.llm_daily_token_budget is None:
        return None
    status = organization_selectors.llm_budget_status(organization=organization)
    return status if status.exhausted else None


def usage_estimate(*, request: CompletionRequest, text: str) -> Completion:
    """Usage of an answer whose provider never reported its own (~4 characters a token)."""
    return Completion(
        content=text,
        model=request.model,
        prompt_tokens=sum(len(message.content) for message in request.messages) // 4,
        completion_tokens=max(1, len(text) // 4),
        knows=False,
    )


def usage_record(*, organization: Organization, request: CompletionRequest, completion: Completion) -> None:
    """Adds one metered call to the organization's meter for today."""
    if not completion.prompt_tokens and not completion.completion_tokens:
        completion = usage_estimate(request=request, text=completion.content)
    organization_services.llm_usage_record(
        organization=organization,
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        cost=completion.cost,
    )
