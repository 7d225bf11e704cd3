from __future__ import annotations

import json

from django import forms

from assistants.llm_models import PROVIDERS, model_choices
from assistants.models import Action
from assistants.validators import model_validate

TONES = ["professional", "friendly", "casual", "formal", "empathetic", "concise", "enthusiastic"]


class AssistantForm(forms.Form):
    name = forms.CharField(max_length=200, widget=forms.TextInput(attrs={"placeholder": "Support assistant"}))
    description = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What this assistant is for (shown to your team).",
    )
    tone = forms.CharField(
        max_length=50,
        required=False,
        initial="professional",
        widget=forms.TextInput(attrs={"list": "tone-options"}),
        help_text="How it sounds: professional, friendly, casual…",
    )
    language = forms.CharField(
        max_length=20, required=False, initial="en", help_text="Answer language, e.g. en, fr, de."
    )
    default_tasks = forms.CharField(
        label="Default tasks",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "answer_questions\nprovide_support"}),
        help_text="One per line: what it should help with.",
    )
    instructions = forms.CharField(
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 6, "placeholder": "Always greet the customer by name when known…"}
        ),
        help_text="Extra rules for every answer. Knowledge, not instructions, should hold facts.",
    )
    model = forms.ChoiceField(
        label="LLM model",
        required=False,
        help_text="The models this server allows, and those your organization added in Settings › AI model.",
    )
    temperature = forms.FloatField(
        min_value=0.0,
        max_value=2.0,
        initial=0.2,
        widget=forms.NumberInput(attrs={"step": "0.1"}),
        help_text="0 = precise and repeatable, higher = more varied.",
    )
    is_active = forms.BooleanField(label="Active (answers visitors)", required=False, initial=True)
    # Escalation (docs/support-desk.md). Left out of a post, the number is not changed.
    handoff_after_unanswered = forms.IntegerField(
        label="Hand to a person after this many unanswered answers in a row",
        min_value=0,
        max_value=20,
        required=False,
        initial=2,
        help_text="Answers that found nothing in your knowledge; 0 = never.",
    )
    handoff_on_thumbs_down = forms.BooleanField(
        label="A thumbs-down on an answer asks for a person", required=False
    )

    def __init__(self, *args, organization=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.organization = organization
        self.fields["model"].choices = model_choices(organization=organization)

    def clean_model(self) -> str:
        return model_validate(self.cleaned_data["model"], organization=self.organization)

    def clean_default_tasks(self) -> list[str]:
        raw = self.cleaned_data["default_tasks"].replace(",", "\n")
        return [task.strip() for task in raw.splitlines() if task.strip()]


class ActionForm(forms.Form):
    """An assistant action in the dashboard. Header values are write-only: on an existing
    action the form lists their names, takes new or replacement values and removals."""

    name = forms.CharField(
        max_length=64,
        widget=forms.TextInput(attrs={"placeholder": "order_lookup", "autocomplete": "off"}),
        help_text="An identifier the model calls: letters, digits, _ or -, starting with a letter.",
    )
    description = forms.CharField(
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "Look up an order's status by its number."}),
        help_text="What it does and when to use it: the model reads this to decide when to call it.",
    )
    method = forms.ChoiceField(choices=[(method, method) for method in Action.Method.values], initial="GET")
    url_template = forms.CharField(
        label="URL",
        max_length=2000,
        widget=forms.TextInput(attrs={"placeholder": "https://api.example.com/orders/{order_id}"}),
        help_text="{placeholders} are filled from the parameters, URL-encoded. Other arguments go in the "
        "query string (GET, DELETE) or the JSON body (POST, PUT, PATCH).",
    )
    parameters = forms.CharField(
        label="Parameters (JSON Schema)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "class": "mono", "spellcheck": "false"}),
        help_text='An object schema, e.g. {"type": "object", "properties": {"order_id": {"type": "string"}}, '
        '"required": ["order_id"]}.',
    )
    headers = forms.CharField(
        required=False,
        widget=forms.Textarea(
            attrs={
                "rows": 3,
                "class": "mono",
                "spellcheck": "false",
                "placeholder": "Authorization: Bearer …",
            }
        ),
        help_text="One 'Name: value' per line. Stored encrypted and never shown again; a name that is "
        "already set is replaced.",
    )
    remove_headers = forms.MultipleChoiceField(
        label="Remove headers", required=False, widget=forms.CheckboxSelectMultiple
    )
    requires_verified_visitor = forms.BooleanField(
        label="Only for verified visitors",
        required=False,
        help_text="Not offered to anonymous widget visitors (API-key callers and the playground count as verified).",
    )
    is_active = forms.BooleanField(label="Active (offered to the model)", required=False, initial=True)

    def __init__(self, *args, header_names: list[str] | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["remove_headers"].choices = [(name, name) for name in header_names or []]
        if not header_names:
            del self.fields["remove_headers"]

    def clean_parameters(self) -> dict:
        raw = self.cleaned_data["parameters"].strip()
        if not raw:
            return {}
        try:
            return json.loads(raw)
        except ValueError as error:
            raise forms.ValidationError(f"Not valid JSON: {error}") from None

    def clean_headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for number, line in enumerate(self.cleaned_data["headers"].splitlines(), start=1):
            if not line.strip():
                continue
            name, separator, value = line.partition(":")
            if not separator or not name.strip():
                raise forms.ValidationError(f"Line {number}: write 'Name: value'.")
            headers[name.strip()] = value.strip()
        return headers


class ActionImportForm(forms.Form):
    document = forms.CharField(
        label="OpenAPI 3 operation or document (JSON)",
        widget=forms.Textarea(attrs={"rows": 6, "class": "mono", "spellcheck": "false"}),
    )
    path = forms.CharField(required=False, max_length=2000, help_text="e.g. /orders/{order_id}")
    import_method = forms.CharField(label="Method", required=False, max_length=10, help_text="e.g. GET")
    base_url = forms.CharField(
        label="Base URL",
        required=False,
        max_length=2000,
        help_text="where the API lives, unless the document says",
    )


class ModelConnectionForm(forms.Form):
    """Settings › AI model: a model the organization brings, with its own key."""

    provider = forms.ChoiceField(choices=[(provider.code, provider.label) for provider in PROVIDERS])
    model = forms.CharField(
        max_length=200,
        help_text="The provider's model name, e.g. gpt-4o-mini, claude-3-5-haiku-latest, llama3.1.",
        widget=forms.TextInput(attrs={"placeholder": "gpt-4o-mini", "autocomplete": "off"}),
    )
    api_key = forms.CharField(
        label="API key",
        required=False,
        max_length=500,
        strip=True,
        help_text="Stored encrypted; never shown again. Self-hosted servers may need none.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
    )
    base_url = forms.CharField(
        label="Base URL",
        required=False,
        max_length=500,
        help_text="Only for self-hosted servers (Ollama, vLLM, LM Studio), e.g. https://llm.example.com/v1.",
        widget=forms.URLInput(attrs={"placeholder": "https://llm.example.com/v1"}),
    )
    label = forms.CharField(
        max_length=100, required=False, help_text="A name your team recognises (optional)."
    )


class ModelConnectionUpdateForm(forms.Form):
    api_key = forms.CharField(
        label="New API key",
        required=False,
        max_length=500,
        help_text="Leave empty to keep the stored key.",
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}, render_value=False),
    )
    base_url = forms.CharField(label="Base URL", required=False, max_length=500)
    label = forms.CharField(max_length=100, required=False)
