"""Settings › AI model: a model the organization brings (its own key, encrypted; a base URL for
a self-hosted server), picked per assistant, reached through litellm on the fake
OpenAI-compatible server on loopback; SSRF rules on the base URL (fake resolver for names);
the server's own credentials never go to a tenant's model."""

from __future__ import annotations

import pytest
from django.urls import reverse

from assistants import llm_models
from assistants.models import Assistant, ModelConnection
from chat import services as chat_services
from core import fetcher
from knowledge.services import qa_create
from testkit.llm_server import LoopbackLLM

pytestmark = pytest.mark.django_db

ORG_KEY = "sk-org-own-key-0123456789abcd"
SERVER_KEY = "sk-server-operator-secret-9876"


@pytest.fixture
def llm_server():
    server = LoopbackLLM().start()
    yield server
    server.stop()


@pytest.fixture
def self_hosted(llm_server, settings, monkeypatch):
    """The server admin allows the loopback "self-hosted" server; the server itself runs offline
    but holds credentials of its own that must never reach a tenant's model."""
    settings.LLM_BASE_URL_ALLOWLIST = [f"127.0.0.1:{llm_server.port}"]
    settings.LLM_MODEL = ""
    settings.LLM_PROVIDER = ""
    settings.LLM_API_KEY = SERVER_KEY
    settings.LLM_TIMEOUT = 5.0
    settings.LLM_MAX_RETRIES = 0
    monkeypatch.setenv("OPENAI_API_KEY", SERVER_KEY)
    return llm_server


def _add(client, **fields):
    data = {"provider": "openai_compatible", "model": "house-llm", "api_key": "", "base_url": "", "label": ""}
    data.update(fields)
    return client.post(reverse("settings-ai-model"), data)


def test_owner_adds_a_self_hosted_model_key_encrypted_and_never_shown(owner_client, tenant, self_hosted):
    response = _add(owner_client, api_key=ORG_KEY, base_url=self_hosted.api_base, label="House LLM")
    assert response.status_code == 302
    connection = ModelConnection.objects.for_organization(tenant.organization).get()
    assert connection.name == "openai/house-llm"
    assert ORG_KEY not in connection.api_key_encrypted and connection.api_key_hint == "abcd"
    page = owner_client.get(reverse("settings-ai-model"))
    assert b"House LLM" in page.content and b"abcd" in page.content
    assert ORG_KEY.encode() not in page.content
    edit = owner_client.get(reverse("settings-ai-model-edit", args=[connection.pk]))
    assert ORG_KEY.encode() not in edit.content  # write-only: not even in the edit form
    # The assistant picker lists it; picking it through the dashboard is allowed.
    form = owner_client.get(reverse("assistant-create"))
    assert b'value="openai/house-llm"' in form.content and b"House LLM (your key)" in form.content


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"provider": "nope"}, "provider"),
        ({"model": ""}, "model"),
        ({"model": "two words"}, "model"),
        ({"provider": "openai", "model": "gpt-4o-mini"}, "api_key"),  # a cloud provider needs a key
        (
            {
                "provider": "openai",
                "model": "gpt-4o-mini",
                "api_key": "k",
                "base_url": "https://x.example/v1",
            },
            "base_url",
        ),
        ({"base_url": ""}, "base_url"),  # a self-hosted server needs its address
        ({"base_url": "ftp://llm.example.com/"}, "base_url"),
        ({"base_url": "http://user:pw@llm.example.com/v1"}, "base_url"),
        ({"base_url": "http://127.0.0.1:11434/v1"}, "base_url"),  # loopback, not allow-listed
        ({"base_url": "http://10.0.0.5/v1"}, "base_url"),
        ({"base_url": "http://169.254.169.254/latest"}, "base_url"),
    ],
)
def test_bad_input_is_refused_with_the_field_named_and_nothing_stored(owner_client, tenant, fields, field):
    response = _add(owner_client, **fields)
    assert response.status_code == 200
    assert field in response.context["form"].errors
    assert not ModelConnection.objects.for_organization(tenant.organization).exists()


def test_a_base_url_whose_name_resolves_to_a_private_address_is_refused(tenant, monkeypatch):
    answers = {"llm.attacker.net": ["169.254.169.254"], "llm.example.com": ["93.184.216.34"]}
    monkeypatch.setattr(fetcher, "resolver", lambda host, port: answers[host])
    with pytest.raises(llm_models.ValidationFailed) as refusal:
        llm_models.connection_create(
            organization=tenant.organization,
            provider="ollama",
            model="llama3.1",
            base_url="http://llm.attacker.net/",
        )
    assert "LLM_BASE_URL_ALLOWLIST" in refusal.value.message
    connection = llm_models.connection_create(
        organization=tenant.organization,
        provider="ollama",
        model="llama3.1",
        base_url="https://llm.example.com/",
    )
    assert connection.name == "ollama_chat/llama3.1"
    # DNS changes after saving: the next call is refused before any connection is made.
    answers["llm.example.com"] = ["10.0.0.7"]
    route = llm_models.model_route(organization=tenant.organization, assistant_model=connection.name)
    assert "not allowed" in route.refusal


def test_agents_and_other_organizations_cannot_touch_it(
    owner_client, agent_client, foreign_client, tenant, other_tenant, self_hosted
):
    _add(owner_client, base_url=self_hosted.api_base)
    connection = ModelConnection.objects.for_organization(tenant.organization).get()
    assert agent_client.get(reverse("settings-ai-model")).status_code == 403
    assert _add(agent_client, model="other", base_url=self_hosted.api_base).status_code == 403
    for name in ("settings-ai-model-edit", "settings-ai-model-delete", "settings-ai-model-test"):
        assert foreign_client.post(reverse(name, args=[connection.pk]), {}).status_code == 404
    assert b"house-llm" not in foreign_client.get(reverse("settings-ai-model")).content
    # Another organization's assistant cannot pick it by name.
    other = other_tenant.client().post(
        "/api/v1/assistants/", {"name": "Thief", "model": "openai/house-llm"}, format="json"
    )
    assert other.status_code == 400 and "model" in other.json()["data"]
    assert ModelConnection.objects.for_organization(tenant.organization).count() == 1


def test_an_assistant_on_the_organizations_model_answers_through_it_with_its_key(tenant, self_hosted):
    connection = llm_models.connection_create(
        organization=tenant.organization,
        provider="openai_compatible",
        model="house-llm",
        api_key=ORG_KEY,
        base_url=self_hosted.api_base,
    )
    response = tenant.client().post(
        "/api/v1/assistants/", {"name": "Shop", "model": connection.name}, format="json"
    )
    assert response.status_code == 201, response.content
    assistant = Assistant.objects.for_organization(tenant.organization).get(pk=response.json()["data"]["id"])
    qa_create(
        organization=tenant.organization,
        question="How long do refunds take?",
        answer="Refunds reach your card within 5 business days.",
    )
    session = chat_services.session_create(
        organization=tenant.organization, assistant=assistant, visitor_id="v1"
    )
    chat_services.message_post(conversation=session, content="How long do refunds take?")
    answer = session.messages.filter(role="assistant").get()
    assert "5 business days" in answer.content and answer.model.endswith("house-llm")
    assert self_hosted.last_request["model"] == "house-llm"
    assert self_hosted.headers[-1]["authorization"] == f"Bearer {ORG_KEY}"


def test_a_model_without_a_key_never_gets_the_servers_key(tenant, self_hosted):
    connection = llm_models.connection_create(
        organization=tenant.organization,
        provider="openai_compatible",
        model="house-llm",
        base_url=self_hosted.api_base,
    )
    assistant = Assistant.objects.create(organization=tenant.organization, name="A", model=connection.name)
    session = chat_services.session_create(
        organization=tenant.organization, assistant=assistant, visitor_id="v2"
    )
    chat_services.message_post(conversation=session, content="Hello there, do you ship to Spain?")
    sent = [headers.get("authorization", "") for headers in self_hosted.headers]
    assert sent and all(SERVER_KEY not in value for value in sent)
    assert sent[-1] == f"Bearer {llm_models.NO_KEY}"


def test_a_base_url_no_longer_allowed_is_not_called(tenant, self_hosted, settings):
    connection = llm_models.connection_create(
        organization=tenant.organization,
        provider="openai_compatible",
        model="house-llm",
        base_url=self_hosted.api_base,
    )
    assistant = Assistant.objects.create(organization=tenant.organization, name="A", model=connection.name)
    session = chat_services.session_create(
        organization=tenant.organization, assistant=assistant, visitor_id="v3"
    )
    settings.LLM_BASE_URL_ALLOWLIST = []  # the admin withdrew the allowance
    with pytest.raises(Exception) as failure:
        chat_services.message_post(conversation=session, content="Where is my parcel?")
    assert "language model failed" in str(failure.value)
    assert self_hosted.requests == []


def test_test_connection_reports_success_and_failure_without_the_key(owner_client, tenant, self_hosted):
    _add(owner_client, api_key=ORG_KEY, base_url=self_hosted.api_base)
    connection = ModelConnection.objects.for_organization(tenant.organization).get()
    ok = owner_client.post(reverse("settings-ai-model-test", args=[connection.pk]), follow=True)
    assert b"Connection works" in ok.content and b"openai/house-llm answered" in ok.content
    # A server that ignores max_tokens: its long reply is cut at a word and marked as cut
    # (found on a walk: "…Would you li" in 6767 ms).
    self_hosted.then(
        content="Sorry, there is no information about that here. Would you like to talk to a person?"
    )
    long = owner_client.post(reverse("settings-ai-model-test", args=[connection.pk]), follow=True)
    assert "answered “Sorry, there is no information about that here. Would you…”" in long.content.decode()
    self_hosted.then(kind="status", code=401, message=f"Incorrect API key provided: {ORG_KEY}")
    failed = owner_client.post(reverse("settings-ai-model-test", args=[connection.pk]), follow=True)
    assert b"did not answer" in failed.content
    assert ORG_KEY.encode() not in failed.content


def test_replacing_the_key_and_removing_the_model(owner_client, tenant, self_hosted):
    _add(owner_client, api_key=ORG_KEY, base_url=self_hosted.api_base)
    connection = ModelConnection.objects.for_organization(tenant.organization).get()
    assistant = Assistant.objects.create(organization=tenant.organization, name="A", model=connection.name)
    url = reverse("settings-ai-model-edit", args=[connection.pk])
    owner_client.post(url, {"api_key": "", "base_url": self_hosted.api_base, "label": "Renamed"})
    connection.refresh_from_db()
    assert connection.label == "Renamed" and connection.api_key_hint == "abcd"  # empty keeps the key
    owner_client.post(
        url, {"api_key": "sk-new-key-wxyz", "base_url": self_hosted.api_base, "label": "Renamed"}
    )
    connection.refresh_from_db()
    assert connection.api_key_hint == "wxyz"
    route = llm_models.model_route(organization=tenant.organization, assistant_model=assistant.model)
    assert route.api_key == "sk-new-key-wxyz"
    owner_client.post(reverse("settings-ai-model-delete", args=[connection.pk]))
    assert not ModelConnection.objects.for_organization(tenant.organization).exists()
    # The assistant falls back to the server default (offline here) instead of failing.
    assert llm_models.model_route(organization=tenant.organization, assistant_model=assistant.model).offline


def test_offline_assistants_say_which_settings_have_no_effect(owner_client, tenant, self_hosted):
    assistant = Assistant.objects.create(organization=tenant.organization, name="A")
    edit = owner_client.get(reverse("assistant-edit", args=[assistant.pk]))
    assert b'data-testid="offline-notice"' in edit.content and b"have no effect" in edit.content
    playground = owner_client.get(reverse("assistant-playground", args=[assistant.pk]))
    assert b'data-testid="offline-notice"' in playground.content
    connection = llm_models.connection_create(
        organization=tenant.organization,
        provider="openai_compatible",
        model="house-llm",
        base_url=self_hosted.api_base,
    )
    assistant.model = connection.name
    assistant.save(update_fields=["model"])
    assert b"offline-notice" not in owner_client.get(reverse("assistant-edit", args=[assistant.pk])).content


OLLAMA_REPLY = (
    b'{"model": "llama3.1", "created_at": "2026-01-01T00:00:00Z", "message": {"role": "assistant", '
    b'"content": "OK"}, "done": true, "done_reason": "stop", "prompt_eval_count": 5, "eval_count": 1}'
)


@pytest.fixture
def public_and_internal(settings):
    """A "public" model server (the admin allowed its host:port) and an internal service it
    may try to send us to (not allowed: a loopback port standing in for 169.254.169.254)."""
    from testkit.sites import LoopbackSite

    public, internal = LoopbackSite(), LoopbackSite()
    internal.page("/v1/chat/completions", b"{}", content_type="application/json")
    internal.page("/api/chat", OLLAMA_REPLY, content_type="application/json")
    settings.LLM_BASE_URL_ALLOWLIST = [public.netloc]
    settings.LLM_MODEL = ""
    settings.LLM_TIMEOUT = 5.0
    settings.LLM_MAX_RETRIES = 0
    yield public, internal
    public.close()
    internal.close()


@pytest.mark.parametrize("status", [302, 307])
@pytest.mark.parametrize(
    ("provider", "path"), [("openai_compatible", "/v1/chat/completions"), ("ollama", "/api/chat")]
)
def test_a_model_server_redirecting_inward_is_not_followed(
    tenant, public_and_internal, provider, path, status
):
    """Found by the security pass: litellm's HTTP clients followed a redirect from an allowed
    base URL to any address (the OpenAI SDK showed the internal answer in "Test connection"),
    and resolved the name again when connecting. Every connection is now checked and pinned."""
    from chat.services.model_test import model_connection_test

    public, internal = public_and_internal
    public.redirect(path, internal.url(path), status=status)
    connection = llm_models.connection_create(
        organization=tenant.organization,
        provider=provider,
        model="house-llm",
        base_url=public.url("/v1" if provider == "openai_compatible" else "/"),
    )
    result = model_connection_test(connection=connection)
    assert not result.ok
    assistant = Assistant.objects.create(organization=tenant.organization, name="A", model=connection.name)
    session = chat_services.session_create(
        organization=tenant.organization, assistant=assistant, visitor_id="v"
    )
    with pytest.raises(Exception, match="language model"):
        chat_services.message_post(conversation=session, content="Where is my parcel?")
    with pytest.raises(Exception, match="language model"):  # a streamed answer takes the same client
        list(chat_services.message_post_stream(conversation=session, content="And my other parcel?"))
    assert path in public.requests  # the allowed server was asked…
    assert internal.requests == []  # …and the internal one never was


def test_an_ollama_server_answers_through_the_checked_client(tenant, public_and_internal):
    from chat.services.model_test import model_connection_test

    public, _internal = public_and_internal
    public.page("/api/chat", OLLAMA_REPLY, content_type="application/json")
    connection = llm_models.connection_create(
        organization=tenant.organization, provider="ollama", model="llama3.1", base_url=public.url("/")
    )
    result = model_connection_test(connection=connection)
    assert result.ok, result.detail
    assert "answered “OK”" in result.detail
    assistant = Assistant.objects.create(organization=tenant.organization, name="A", model=connection.name)
    session = chat_services.session_create(
        organization=tenant.organization, assistant=assistant, visitor_id="v"
    )
    chat_services.message_post(conversation=session, content="Where is my parcel?")
    assert session.messages.filter(role="assistant").get().content == "OK"
    # litellm asks the tenant's server nothing else (no /api/show through a client of its own).
    assert public.requests == ["/api/chat", "/api/chat"]


def test_the_checked_client_connects_only_to_the_address_it_checked(monkeypatch):
    """DNS rebinding: the name is resolved by the guard at connect time and the socket goes to
    that checked address; a later answer pointing inward is refused before any connect."""
    import socket

    import httpx

    answers = [["93.184.216.34"], ["10.0.0.7"]]
    resolved, connects = [], []

    def resolve(host, port):
        resolved.append(host)
        return answers[min(len(resolved), len(answers)) - 1]

    def connect_spy(address, *args, **kwargs):
        connects.append(address)
        raise ConnectionRefusedError("connect spy: no real connection in this test")

    monkeypatch.setattr(socket, "create_connection", connect_spy)
    with fetcher.guarded_httpx_client(resolve=resolve) as client:
        for _attempt in range(2):
            with pytest.raises(httpx.ConnectError):
                client.post("https://llm.example.com/v1/chat/completions", json={})
        with pytest.raises(httpx.ConnectError, match="not allowed"):
            client.get("http://llm.example.com:8080/")  # not 80/443
        with pytest.raises(httpx.ConnectError, match="not allowed"):
            client.get("http://169.254.169.254/latest/meta-data/")
    assert resolved == ["llm.example.com", "llm.example.com"]
    assert connects == [("93.184.216.34", 443)]
