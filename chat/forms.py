from __future__ import annotations

from django import forms


class InboxFilterForm(forms.Form):
    assistant = forms.ChoiceField(required=False)
    status = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Any status"),
            ("waiting", "Waiting for a person"),
            ("human", "Handed off (operator)"),
            ("bot", "Bot answering"),
            ("resolved", "Resolved"),
        ],
    )
    kind = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Sessions & conversations"),
            ("session", "Sessions"),
            ("conversation", "Conversations"),
        ],
    )
    unanswered = forms.BooleanField(required=False, label="Has unanswered questions")
    mine = forms.BooleanField(required=False, label="Assigned to me")
    feedback = forms.ChoiceField(
        required=False,
        choices=[
            ("", "Any feedback"),
            ("any", "Rated"),
            ("up", "Rated helpful"),
            ("down", "Rated not helpful"),
        ],
    )
    date_from = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(required=False, label="To", widget=forms.DateInput(attrs={"type": "date"}))
    q = forms.CharField(
        required=False,
        max_length=200,
        label="Search",
        widget=forms.TextInput(attrs={"placeholder": "Text, visitor, customer…"}),
    )

    def __init__(self, *args, assistants=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.assistants = {str(a.pk): a for a in assistants}
        self.fields["assistant"].choices = [("", "All assistants")] + [
            (pk, a.name) for pk, a in self.assistants.items()
        ]

    def clean_assistant(self):
        return self.assistants.get(self.cleaned_data.get("assistant") or "")


class NotificationsForm(forms.Form):
    handoff_email = forms.BooleanField(required=False, label="Email me when a visitor waits for a person")


class ReplyForm(forms.Form):
    content = forms.CharField(max_length=4000, widget=forms.Textarea(attrs={"rows": 3}))


class OverviewFilterForm(forms.Form):
    days = forms.TypedChoiceField(
        coerce=int,
        required=False,
        choices=[(7, "Last 7 days"), (30, "Last 30 days"), (90, "Last 90 days")],
        initial=30,
    )
    assistant = forms.ChoiceField(required=False)
    # Conversations an operator had with an assistant in its playground are tests, not
    # visitors: left out of the figures unless asked for.
    playground = forms.BooleanField(required=False, label="Include playground")

    def __init__(self, *args, assistants=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.assistants = {str(a.pk): a for a in assistants}
        self.fields["assistant"].choices = [("", "All assistants")] + [
            (pk, a.name) for pk, a in self.assistants.items()
        ]

    def clean_assistant(self):
        return self.assistants.get(self.cleaned_data.get("assistant") or "")


class PrivacySettingsForm(forms.Form):
    retention_days = forms.IntegerField(
        label="Delete conversations after (days)",
        required=False,
        min_value=1,
        max_value=3650,
        help_text="Counted from a conversation's last message; a daily task deletes older ones. "
        "Empty = keep until deleted.",
    )
    keep_original_files = forms.BooleanField(
        label="Keep original uploaded files",
        required=False,
        help_text="Off: an uploaded file is deleted once parsed; its text stays in the knowledge base.",
    )


class PrivacySubjectForm(forms.Form):
    kind = forms.ChoiceField(
        label="Identify the person by",
        choices=[("customer_id", "Customer id"), ("visitor_id", "Visitor id"), ("email", "Email")],
    )
    value = forms.CharField(label="Identifier", max_length=255)


class PlaygroundForm(forms.Form):
    content = forms.CharField(max_length=4000, widget=forms.Textarea(attrs={"rows": 1}))
