from __future__ import annotations

from django import forms

from knowledge.models import KnowledgeSource

ORG_WIDE = ""


class AssistantScopeMixin(forms.Form):
    assistant = forms.ChoiceField(
        label="Available to",
        required=False,
        help_text="Organization-wide knowledge is used by every assistant.",
    )
    # The Knowledge page shows the upload, website, Q&A and test-retrieval forms together, and
    # each has an "assistant" field: each form's fields get ids of their own (Django's
    # `auto_id`, e.g. "id_qa_%s" → id_qa_assistant), which every label's `for` follows.
    auto_id_format = "id_%s"

    def __init__(self, *args, assistants=(), **kwargs):
        kwargs.setdefault("auto_id", self.auto_id_format)
        super().__init__(*args, **kwargs)
        self.assistants = {str(a.pk): a for a in assistants}
        self.fields["assistant"].choices = [(ORG_WIDE, "All assistants")] + [
            (pk, f"Only {a.name}") for pk, a in self.assistants.items()
        ]

    def clean_assistant(self):
        return self.assistants.get(self.cleaned_data.get("assistant") or "")


class QAForm(AssistantScopeMixin):
    auto_id_format = "id_qa_%s"
    question = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "What are your opening hours?"}),
    )
    answer = forms.CharField(
        max_length=20000,
        widget=forms.Textarea(attrs={"rows": 4, "placeholder": "We're open Monday to Friday, 9am–5pm."}),
    )
    tags = forms.CharField(required=False, help_text="Comma-separated, e.g. billing, shipping.")
    # "Turn into Q&A" on the overview: the visitor's question, kept even if the operator
    # rewords it, so that question leaves the list of questions without an answer.
    made_from = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)

    def clean_tags(self) -> list[str]:
        return [tag.strip() for tag in self.cleaned_data["tags"].split(",") if tag.strip()]


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault(
            "widget", MultipleFileInput(attrs={"accept": ".pdf,.txt,.md,.markdown,.html,.htm,.docx"})
        )
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            if not data and self.required:
                raise forms.ValidationError(self.error_messages["required"], code="required")
            return [single(item, initial) for item in data]
        return [single(data, initial)]


class FileUploadForm(AssistantScopeMixin):
    auto_id_format = "id_file_%s"
    files = MultipleFileField(label="Files")


class UrlForm(AssistantScopeMixin):
    auto_id_format = "id_url_%s"
    url = forms.URLField(
        label="Page URL",
        max_length=2000,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"placeholder": "https://www.example.com/help"}),
    )
    title = forms.CharField(max_length=500, required=False)
    crawl = forms.BooleanField(label="Also crawl linked pages on the same site", required=False)
    max_pages = forms.IntegerField(label="Max pages", min_value=1, max_value=500, initial=20, required=False)
    sync_interval_hours = forms.IntegerField(
        label="Re-sync every (hours)",
        min_value=1,
        max_value=24 * 30,
        required=False,
        help_text="Empty = never.",
    )


class SourceFilterForm(forms.Form):
    kind = forms.ChoiceField(required=False, choices=[("", "All types"), *KnowledgeSource.Kind.choices])
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *KnowledgeSource.Status.choices])
    q = forms.CharField(required=False, label="Search")


class RetrievalTestForm(forms.Form):
    query = forms.CharField(label="Question", max_length=2000)
    assistant = forms.ChoiceField(label="As assistant", required=False)

    def __init__(self, *args, assistants=(), **kwargs):
        kwargs.setdefault("auto_id", "id_retrieval_%s")  # on the Knowledge page: see AssistantScopeMixin
        super().__init__(*args, **kwargs)
        self.assistants = {str(a.pk): a for a in assistants}
        self.fields["assistant"].choices = [("", "Organization-wide only")] + [
            (pk, a.name) for pk, a in self.assistants.items()
        ]

    def clean_assistant(self):
        return self.assistants.get(self.cleaned_data.get("assistant") or "")


def knowledge_embedder_choices() -> list[tuple[str, str]]:
    """Settings › Knowledge: what the organization's knowledge is searched with."""
    from django.conf import settings

    from knowledge.embeddings import DEFAULT, MULTILINGUAL

    default = (
        f"Server default ({settings.EMBEDDING_MODEL})"
        if settings.EMBEDDING_MODEL
        else "English (fast): all-MiniLM-L6-v2"
    )
    return [
        (DEFAULT, default),
        (
            MULTILINGUAL,
            "Many languages: multilingual-e5-small (questions in one language find passages in another)",
        ),
    ]


class KnowledgeSettingsForm(forms.Form):
    knowledge_embedder = forms.ChoiceField(
        label="Knowledge language",
        widget=forms.RadioSelect,
        help_text="Switching re-embeds every passage in the background; search keeps using the "
        "current model until all are done.",
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["knowledge_embedder"].choices = knowledge_embedder_choices()
