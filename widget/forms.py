from __future__ import annotations

from django import forms

from widget.models import Widget


class WidgetForm(forms.Form):
    assistant = forms.ChoiceField(label="Assistant", help_text="Who answers in this widget.")
    title = forms.CharField(max_length=100, help_text="Shown at the top of the chat panel.")
    greeting = forms.CharField(max_length=500, widget=forms.Textarea(attrs={"rows": 2}), required=False)
    placeholder = forms.CharField(label="Input placeholder", max_length=200, required=False)
    launcher_label = forms.CharField(label="Launcher label", max_length=50)
    primary_color = forms.CharField(
        label="Brand colour", max_length=7, widget=forms.TextInput(attrs={"type": "color"})
    )
    position = forms.ChoiceField(choices=Widget.Position.choices)
    suggested_questions = forms.CharField(
        label="Suggested questions",
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": "What are your opening hours?\nHow do I return an item?"}
        ),
        help_text="One per line (up to 8). Visitors can click them to start.",
    )
    allowed_domains = forms.CharField(
        label="Allowed domains",
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 3, "placeholder": "www.example.com\nhttps://*.example.com\nhttp://localhost:8080"}
        ),
        help_text="One site per line: a host (www.example.com means https://www.example.com; "
        "localhost means http://) or a full origin. Only these sites can open the widget; "
        "leave empty to allow any site.",
    )
    show_sources = forms.BooleanField(label="Show sources under answers", required=False)
    collect_feedback = forms.BooleanField(
        label="Let visitors rate answers (thumbs up / down)", required=False
    )
    auto_open = forms.BooleanField(label="Open automatically on page load", required=False)
    human_handoff = forms.ChoiceField(
        label='"Talk to a person" button',
        choices=[
            ("after_answer", "Show once the assistant has answered"),
            ("always", "Always show"),
            ("off", "Hide (visitors can still ask in a message)"),
        ],
        initial="after_answer",
        required=False,
    )

    def clean_human_handoff(self) -> str:
        return self.cleaned_data.get("human_handoff") or "after_answer"

    is_active = forms.BooleanField(label="Widget is live", required=False)
    require_verified_visitors = forms.BooleanField(
        label="Require verified visitors",
        required=False,
        help_text="Only visitors your server signs in (user_hash or user_token made with the "
        "identity secret in Settings › Security) can chat. For widgets on signed-in pages.",
    )

    def __init__(self, *args, assistants=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assistant"].choices = [(str(a.pk), a.name) for a in assistants]


class WidgetCreateForm(forms.Form):
    assistant = forms.ChoiceField(label="Assistant")
    title = forms.CharField(max_length=100, initial="Support")

    def __init__(self, *args, assistants=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assistant"].choices = [(str(a.pk), a.name) for a in assistants]
