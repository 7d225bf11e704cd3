"""The dashboard's home: the overview of every app's figures and the onboarding checklist.

It reads chat's statistics and asks organizations, assistants, knowledge and widget whether
each first step is done, so it sits above all of them, here at the top of the tree.
"""

from __future__ import annotations

from django.urls import reverse
from django.views.generic import TemplateView

from assistants import selectors as assistant_selectors
from chat import selectors
from chat.forms import OverviewFilterForm
from knowledge import selectors as knowledge_selectors
from organizations import selectors as organization_selectors
from organizations.budgets import budget_banner_list
from organizations.dashboard import OrganizationMixin
from supportai import charts
from widget import selectors as widget_selectors


def onboarding_steps(*, organization) -> list[dict]:
    return [
        {
            "done": organization_selectors.api_key_widget_facing(organization=organization) is not None,
            "title": "Generate an API key",
            "hint": "Your servers and the widget identify your organization with it.",
            "url": reverse("settings-api-keys"),
        },
        {
            "done": assistant_selectors.assistant_list(organization=organization).exists(),
            "title": "Create an assistant",
            "hint": "Give it a name, a tone and instructions.",
            "url": reverse("assistant-create"),
        },
        {
            "done": knowledge_selectors.source_list(organization=organization).exists(),
            "title": "Add knowledge",
            "hint": "Q&A pairs, help-center files or your website: answers come only from here.",
            "url": reverse("knowledge"),
        },
        {
            "done": widget_selectors.widget_list(organization=organization).exists(),
            "title": "Put the widget on your site",
            "hint": "Pick colours and a greeting, then paste one line of HTML.",
            "url": reverse("widgets"),
        },
    ]


class OverviewView(OrganizationMixin, TemplateView):
    template_name = "dashboard/overview.html"
    nav = "overview"
    title = "Overview"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        filters = OverviewFilterForm(
            self.request.GET or None,
            assistants=assistant_selectors.assistant_list(organization=self.organization),
        )
        days, assistant, playground = 30, None, False
        if filters.is_valid():
            days = filters.cleaned_data["days"] or 30
            assistant = filters.cleaned_data["assistant"]
            playground = filters.cleaned_data["playground"]
        stats = selectors.chat_stats(
            organization=self.organization, days=days, assistant=assistant, include_playground=playground
        )
        support = selectors.support_stats(
            organization=self.organization, days=days, assistant=assistant, include_playground=playground
        )
        usage = selectors.message_usage_per_day(
            organization=self.organization, days=days, assistant=assistant, include_playground=playground
        )
        labels = [day["date"].strftime("%b %-d") for day in stats.days]
        steps = onboarding_steps(organization=self.organization)
        llm_budget = organization_selectors.llm_budget_status(organization=self.organization)
        context.update(
            budget_banners=budget_banner_list(organization=self.organization),
            llm_budget_banner=llm_budget if llm_budget.budget and llm_budget.percent >= 80 else None,
            filters=filters
            if filters.is_bound
            else OverviewFilterForm(assistants=filters.assistants.values()),
            days=days,
            stats=stats,
            steps=steps,
            onboarding_done=all(step["done"] for step in steps),
            conversations_chart=charts.stacked_bars(
                labels=labels,
                series=[("conversations", "bar-a", [day["conversations"] for day in stats.days])],
            ),
            messages_chart=charts.stacked_bars(
                labels=labels,
                series=[("messages", "bar-b", [day["messages"] for day in stats.days])],
            ),
            answers_chart=charts.stacked_bars(
                labels=labels,
                series=[
                    ("answered", "bar-ok", [day["answered"] for day in stats.days]),
                    ("unanswered", "bar-bad", [day["unanswered"] for day in stats.days]),
                ],
            ),
            tokens_chart=charts.stacked_bars(
                labels=labels,
                series=[
                    ("prompt tokens", "bar-a", [day["prompt_tokens"] for day in usage]),
                    ("completion tokens", "bar-c", [day["completion_tokens"] for day in usage]),
                ],
            ),
            answered_share=charts.share(stats.answered, stats.unanswered),
            feedback_share=charts.share(stats.feedback_up, stats.feedback_down),
            handoff_percent=round(100 * stats.handoff_rate, 1),
            support=support,
            median_first_reply=duration_text(support.median_first_reply_seconds),
            csat_bars=[
                {
                    "score": score,
                    "count": count,
                    "percent": round(100 * count / support.ratings) if support.ratings else 0,
                }
                for score, count in sorted(support.csat_distribution.items(), reverse=True)
            ],
            per_assistant=[
                dict(row, median_first_reply=duration_text(row["median_first_reply_seconds"]))
                for row in support.per_assistant
            ],
            support_chart=charts.stacked_bars(
                labels=labels,
                series=[("handoffs", "bar-c", [day["handoffs"] for day in support.days])],
            ),
        )
        return context


def duration_text(seconds: float | None) -> str:
    """'45 s', '12 min', '3.5 h', '2.0 d' — or '—' when there is nothing to measure."""
    if seconds is None:
        return "—"
    if seconds < 90:
        return f"{round(seconds)} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
