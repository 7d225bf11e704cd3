from django import forms

from organizations.services import EVENT_TYPES

EVENT_CHOICES = [(name, name) for name in sorted(EVENT_TYPES)]


class EndpointForm(forms.Form):
    url = forms.CharField(
        label="Endpoint URL",
        max_length=2000,
        widget=forms.URLInput(attrs={"placeholder": "https://example.com/hooks/supportai"}),
        help_text="Public http(s) address; private and internal addresses are refused.",
    )
    events = forms.MultipleChoiceField(
        label="Events", choices=EVENT_CHOICES, widget=forms.CheckboxSelectMultiple, required=True
    )
    description = forms.CharField(label="Description", max_length=500, required=False)
    is_active = forms.BooleanField(label="Active", required=False, initial=True)
