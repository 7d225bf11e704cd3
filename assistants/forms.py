from __future__ import annotations

from django import forms

from assistants.llm_models import models_allowed
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
        help_text="The models this server allows (LLM_MODEL, LLM_ALLOWED_MODELS, or offline).",
    )
    temperature = forms.FloatField(
        min_value=0.0,
        max_value=2.0,
        initial=0.2,
        widget=forms.NumberInput(attrs={"step": "0.1"}),
        help_text="0 = precise and repeatable, higher = more varied.",
    )
    is_active = forms.BooleanField(label="Active (answers visitors)", required=False, initial=True)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["model"].choices = [("", "Server default"), *((name, name) for name in models_allowed())]

    def clean_model(self) -> str:
        return model_validate(self.cleaned_data["model"])

    def clean_default_tasks(self) -> list[str]:
        raw = self.cleaned_data["default_tasks"].replace(",", "\n")
        return [task.strip() for task in raw.splitlines() if task.strip()]
