"""Which LLM models an assistant may name, and how each is reached.

An assistant may name a model the server operator allows (`LLM_MODEL`, `LLM_ALLOWED_MODELS`,
"offline") or one its organization configured in Settings › AI model (a `ModelConnection`:
provider, model, the organization's own API key, a base URL for self-hosted servers). A stored
choice that is no longer allowed falls back to the default instead of failing every answer
(`model_resolve`). `model_route` adds what a call needs: the base URL and the key.

Two rules keep one tenant from spending or exposing the operator's credentials:
- an organization's connection always carries its own key (a placeholder when it has none),
  so litellm never falls back to the server's `OPENAI_API_KEY`-style environment variables and
  never sends them to a base URL the organization chose; providers that authenticate with the
  server's ambient cloud identity (Bedrock, Vertex AI, SageMaker…) are not offered to tenants;
- a base URL must be public (SPEC "Fetching URLs"), checked on save and before every call,
  unless the server admin allows its host:port in `LLM_BASE_URL_ALLOWLIST` (a self-hosted
  Ollama or vLLM on the private network).

How a model is called is chat's business (`chat.llm`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.conf import settings

from assistants.models import ModelConnection
from core.crypto import decrypt, encrypt
from core.errors import Conflict, NotFound, ValidationFailed

OFFLINE = "offline"
KEY_PURPOSE = "organization llm api key"
NO_KEY = "no-key"  # sent when a self-hosted server needs none: never the server's own key


@dataclass(frozen=True)
class Provider:
    code: str
    label: str
    prefix: str  # litellm's provider prefix
    base_url: str  # "required", "optional" or "none"
    key: str  # "required" or "optional"
    example: str


PROVIDERS = (
    Provider("openai", "OpenAI", "openai", "none", "required", "gpt-4o-mini"),
    Provider("anthropic", "Anthropic", "anthropic", "none", "required", "claude-3-5-haiku-latest"),
    Provider("gemini", "Google Gemini", "gemini", "none", "required", "gemini-2.0-flash"),
    Provider("mistral", "Mistral", "mistral", "none", "required", "mistral-small-latest"),
    Provider("groq", "Groq", "groq", "none", "required", "llama-3.1-8b-instant"),
    Provider("deepseek", "DeepSeek", "deepseek", "none", "required", "deepseek-chat"),
    Provider(
        "together_ai", "Together AI", "together_ai", "none", "required", "meta-llama/Llama-3-8b-chat-hf"
    ),
    Provider("openrouter", "OpenRouter", "openrouter", "none", "required", "openai/gpt-4o-mini"),
    Provider("xai", "xAI", "xai", "none", "required", "grok-2-latest"),
    Provider("ollama", "Ollama (self-hosted)", "ollama_chat", "required", "optional", "llama3.1"),
    Provider(
        "openai_compatible",
        "OpenAI-compatible server (vLLM, LM Studio, llama.cpp…)",
        "openai",
        "required",
        "optional",
        "meta-llama/Llama-3.1-8B-Instruct",
    ),
)
PROVIDERS_BY_CODE = {provider.code: provider for provider in PROVIDERS}


def _server_models() -> list[str]:
    names = [settings.LLM_MODEL.strip(), *(name.strip() for name in settings.LLM_ALLOWED_MODELS), OFFLINE]
    return list(dict.fromkeys(name for name in names if name))


def connection_list(*, organization):
    return ModelConnection.objects.for_organization(organization)


def connection_get(*, organization, connection_id) -> ModelConnection:
    try:
        return connection_list(organization=organization).get(pk=connection_id)
    except (ModelConnection.DoesNotExist, ValueError, TypeError):
        raise NotFound("AI model not found.") from None


def models_allowed(*, organization=None) -> list[str]:
    """The model names an assistant may choose: the server default first, then the server's
    other models and "offline", then the organization's own."""
    names = _server_models()
    if organization is not None:
        names += list(connection_list(organization=organization).values_list("name", flat=True))
    return list(dict.fromkeys(names))


def model_resolve(*, assistant_model: str = "", organization=None) -> str:
    """The model that answers for an assistant: its own choice while allowed, else the default.
    Only a name the server does not offer itself costs a query (an organization's own model)."""
    chosen = (assistant_model or "").strip()
    if chosen and (
        chosen in _server_models()
        or (
            organization is not None
            and connection_list(organization=organization).filter(name=chosen).exists()
        )
    ):
        return chosen
    return settings.LLM_MODEL.strip() or OFFLINE


@dataclass(frozen=True)
class ModelRoute:
    model: str
    api_base: str = ""
    api_key: str = field(default="", repr=False)
    connection_id: str = ""  # set when the organization's own connection answers
    # The base URL is the organization's: calls go through core.fetcher's checks (every
    # connection, every redirect), not only this route's check of the first address.
    api_base_checked: bool = False
    refusal: str = ""  # why the call must not be made (its base URL is no longer allowed)

    @property
    def offline(self) -> bool:
        return self.model in ("", OFFLINE)


def model_route(*, organization, assistant_model: str = "") -> ModelRoute:
    """How to reach the model that answers for an assistant: a server model with the server's
    key and base URL (no query: the common turn pays nothing for this), or the organization's
    own connection with its key and its base URL, re-checked now (DNS may have changed). A
    connection never shares a server model's name (`connection_create` refuses it; if the
    admin later offers the same name, the server's model answers)."""
    model = model_resolve(assistant_model=assistant_model, organization=organization)
    if model == OFFLINE:
        return ModelRoute(model=OFFLINE)
    if model in _server_models():
        return ModelRoute(model=model, api_base=settings.LLM_API_BASE, api_key=settings.LLM_API_KEY)
    connection = connection_list(organization=organization).filter(name=model).first()
    if connection is None:
        return ModelRoute(model=model, api_base=settings.LLM_API_BASE, api_key=settings.LLM_API_KEY)
    refusal = ""
    if connection.base_url:
        try:
            base_url_check(connection.base_url)
        except ValidationFailed as error:
            refusal = error.message
    key = decrypt(connection.api_key_encrypted, purpose=KEY_PURPOSE) if connection.api_key_encrypted else ""
    return ModelRoute(
        model=model,
        api_base=connection.base_url,
        api_key=key or NO_KEY,
        connection_id=str(connection.pk),
        api_base_checked=bool(connection.base_url),
        refusal=refusal,
    )


def _allowlisted(host: str, port: int) -> bool:
    for entry in settings.LLM_BASE_URL_ALLOWLIST:
        allowed_host, _, allowed_port = entry.strip().lower().rpartition(":")
        if allowed_host.strip("[]") == host and allowed_port.isdigit() and int(allowed_port) == port:
            return True
    return False


def base_url_check(url: str, *, resolve=None) -> str:
    """A base URL litellm may call: http(s), no credentials in it, and a public host on 80/443
    (SPEC "Fetching URLs") unless the server admin allowed its host:port."""
    from urllib.parse import urlsplit

    from core import fetcher

    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise ValidationFailed(
            "Enter a valid base URL.", details={"base_url": ["Enter a valid URL."]}
        ) from None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("http", "https") or not host or "@" in parts.netloc:
        raise ValidationFailed(
            "The base URL must be an http(s) URL without credentials.",
            details={"base_url": ["Use http:// or https:// and no user name or password."]},
        )
    if _allowlisted(host, port):
        return url
    try:
        fetcher.url_check(url, resolve=resolve)
    except fetcher.UrlNotAllowed as refusal:
        message = (
            f"This base URL is not allowed: {refusal}. A server on a private network can be "
            "allowed by the server admin (LLM_BASE_URL_ALLOWLIST)."
        )
        raise ValidationFailed(message, details={"base_url": [message]}) from None
    except fetcher.FetchFailed as failure:
        raise ValidationFailed(str(failure), details={"base_url": [str(failure)]}) from None
    return url


def _clean(*, provider: str, model: str, base_url: str, api_key: str, key_required: bool) -> dict:
    errors: dict[str, list[str]] = {}
    spec = PROVIDERS_BY_CODE.get(provider)
    if spec is None:
        errors["provider"] = [f"Choose one of: {', '.join(PROVIDERS_BY_CODE)}."]
    model = (model or "").strip()
    if not model:
        errors["model"] = ["Name the model, e.g. gpt-4o-mini."]
    elif len(model) > 200 or any(character.isspace() or ord(character) < 32 for character in model):
        errors["model"] = ["A model name has no spaces and at most 200 characters."]
    base_url = (base_url or "").strip()
    if spec is not None:
        if spec.base_url == "required" and not base_url:
            errors["base_url"] = [
                "A self-hosted server needs its base URL, e.g. http://ollama.internal:11434."
            ]
        if spec.base_url == "none" and base_url:
            errors["base_url"] = [f"{spec.label} is reached at its own address; leave the base URL empty."]
        if key_required and spec.key == "required" and not api_key:
            errors["api_key"] = [f"{spec.label} needs an API key."]
    if len(api_key or "") > 500:
        errors["api_key"] = ["At most 500 characters."]
    if errors:
        raise ValidationFailed(
            "Invalid AI model - " + "; ".join(f"{k}: {v[0]}" for k, v in errors.items()), details=errors
        )
    if base_url:
        base_url_check(base_url)
    return {"spec": spec, "model": model, "base_url": base_url}


def _key_fields(api_key: str) -> dict:
    api_key = (api_key or "").strip()
    if not api_key:
        return {"api_key_encrypted": "", "api_key_hint": ""}
    return {"api_key_encrypted": encrypt(api_key, purpose=KEY_PURPOSE), "api_key_hint": api_key[-4:]}


def connection_create(
    *, organization, provider: str, model: str, api_key: str = "", base_url: str = "", label: str = ""
) -> ModelConnection:
    api_key = (api_key or "").strip()
    cleaned = _clean(provider=provider, model=model, base_url=base_url, api_key=api_key, key_required=True)
    name = f"{cleaned['spec'].prefix}/{cleaned['model']}"
    if name in _server_models() or connection_list(organization=organization).filter(name=name).exists():
        raise Conflict(
            f"{name} is already available to your assistants.",
            details={"model": [f"{name} is already available to your assistants."]},
        )
    return ModelConnection.objects.create(
        organization=organization,
        label=(label or "").strip()[:100],
        provider=provider,
        model=cleaned["model"],
        name=name,
        base_url=cleaned["base_url"],
        **_key_fields(api_key),
    )


def connection_update(
    *, connection: ModelConnection, api_key: str = "", base_url: str | None = None, label: str | None = None
) -> ModelConnection:
    """A new key (empty keeps the stored one), base URL or label; provider and model stay (the
    assistants that picked it keep their choice)."""
    api_key = (api_key or "").strip()
    base_url = connection.base_url if base_url is None else base_url
    cleaned = _clean(
        provider=connection.provider,
        model=connection.model,
        base_url=base_url,
        api_key=api_key,
        key_required=False,
    )
    connection.base_url = cleaned["base_url"]
    if label is not None:
        connection.label = label.strip()[:100]
    fields = ["base_url", "label", "updated_at"]
    if api_key:
        for key, value in _key_fields(api_key).items():
            setattr(connection, key, value)
        fields += ["api_key_encrypted", "api_key_hint"]
    connection.save(update_fields=fields)
    return connection


def connection_delete(*, connection: ModelConnection) -> None:
    """Assistants that picked it fall back to the server default (`model_resolve`)."""
    connection.delete()


def model_choices(*, organization) -> list[tuple[str, str]]:
    """The assistant form's picker: the server default, then every allowed model by name."""
    labels = {
        connection.name: f"{connection.label or connection.name} (your key)"
        for connection in connection_list(organization=organization)
    }
    default = settings.LLM_MODEL.strip() or "offline answerer"
    return [("", f"Server default ({default})")] + [
        (
            name,
            labels.get(name, "Offline answerer (quotes your knowledge, no LLM)" if name == OFFLINE else name),
        )
        for name in models_allowed(organization=organization)
    ]
