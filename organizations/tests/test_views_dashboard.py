"""Dashboard: accounts, organization switcher and the Settings pages (Django test client)."""

import re

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse

from organizations.dashboard import SESSION_ORGANIZATION_KEY
from organizations.models import ApiKey, Membership, Organization
from organizations.services import api_key_create
from testkit.fixtures import member_add

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]

DASHBOARD_PAGES = ["overview", "settings-organization", "settings-api-keys", "settings-members"]


@pytest.mark.parametrize("name", DASHBOARD_PAGES)
def test_anonymous_is_sent_to_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=")


def test_sign_up_confirms_the_address_then_creates_user_organization_and_owner_membership(client):
    response = client.post(
        reverse("signup"),
        {
            "name": "Ada Lovelace",
            "email": "Ada@Example.com",
            "password": "analytical-engine-1843",
            "organization_name": "Engines Ltd",
        },
    )
    assert response.status_code == 302 and response["Location"] == reverse("signup-sent")
    # Nothing is usable before the address is confirmed.
    user = get_user_model().objects.get(username="ada@example.com")
    assert not user.is_active and not Organization.objects.filter(name="Engines Ltd").exists()
    assert client.get(reverse("overview")).status_code == 302
    (message,) = mail.outbox
    assert message.to == ["ada@example.com"]
    link = re.search(re.escape(settings.SITE_URL) + r"(/signup/confirm/\S+/)", message.body).group(1)
    assert client.get(link).status_code == 200  # a page with a button: mail scanners only GET
    assert not get_user_model().objects.get(pk=user.pk).is_active
    confirmed = client.post(link)
    assert confirmed.status_code == 302 and confirmed["Location"] == reverse("overview")
    organization = Organization.objects.get(name="Engines Ltd")
    membership = Membership.objects.for_organization(organization).get()
    assert membership.user == user and membership.role == "owner"
    page = client.get(reverse("overview"))
    assert page.status_code == 200 and b"Engines Ltd" in page.content
    # The link works once.
    assert Client().post(link).status_code == 400
    assert Organization.objects.filter(name="Engines Ltd").count() == 1


def test_check_your_inbox_says_where_the_email_went_when_no_mail_is_sent(client, settings, tenant):
    """Found on a new-user walk: `make run` prints email in its terminal (the console
    backend), and "Check your inbox" sent the new user to an inbox nothing would reach."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    for page in (reverse("signup-sent"), reverse("password-reset-done")):
        html = client.get(page).content.decode()
        assert 'data-testid="mail-hint"' in html and "printed the message in the terminal" in html
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = "/srv/supportai/mail"
    assert (
        "wrote the message to a file in /srv/supportai/mail"
        in client.get(reverse("signup-sent")).content.decode()
    )
    for backend, production in (
        ("django.core.mail.backends.smtp.EmailBackend", False),
        (settings.EMAIL_BACKEND, True),
    ):
        settings.EMAIL_BACKEND, settings.PRODUCTION = backend, production
        assert b"mail-hint" not in client.get(reverse("signup-sent")).content
        assert b"mail-hint" not in client.get(reverse("password-reset-done")).content
    settings.PRODUCTION = False
    settings.EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
    client.force_login(tenant.owner)
    invited = client.post(
        reverse("settings-members"), {"email": "new@example.com", "role": "agent"}, follow=True
    )
    assert b"printed the message in the terminal" in invited.content


def test_sign_up_refuses_a_weak_password_and_never_says_an_address_is_taken(client, tenant):
    response = client.post(
        reverse("signup"),
        {"email": tenant.owner.email, "password": "password", "organization_name": "Dup"},
    )
    assert response.status_code == 200
    assert b"too common" in response.content and b"already" not in response.content
    assert not Organization.objects.filter(name="Dup").exists()


def test_login_with_email_and_logout(client, tenant):
    response = client.post(
        reverse("login"), {"username": tenant.owner.email.upper(), "password": "correct-horse-battery"}
    )
    assert response.status_code == 302
    assert client.get(reverse("overview")).status_code == 200
    assert client.post(reverse("logout")).status_code == 302
    assert client.get(reverse("overview")).status_code == 302


def test_login_failure_shows_an_error(client, tenant):
    response = client.post(reverse("login"), {"username": tenant.owner.email, "password": "wrong"})
    assert response.status_code == 200 and b"correct" in response.content


def test_password_reset_sends_a_working_link(client, tenant):
    response = client.post(reverse("password-reset"), {"email": tenant.owner.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    link = re.search(re.escape(settings.SITE_URL) + r"(/password-reset/\S+/)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    assert b"Choose your password" in form_page.content
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "brand-new-pass-42", "new_password2": "brand-new-pass-42"},
    )
    assert done.status_code == 302
    tenant.owner.refresh_from_db()
    assert tenant.owner.check_password("brand-new-pass-42")


def test_dashboard_pages_refuse_framing_and_carry_a_csp(owner_client):
    response = owner_client.get(reverse("overview"))
    assert response["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    login_page = Client().get(reverse("login"))
    assert login_page["X-Frame-Options"] == "DENY"


# --- API keys ------------------------------------------------------------------------------


def test_generate_key_shows_the_secret_exactly_once(owner_client, tenant):
    response = owner_client.post(reverse("settings-api-keys"), {"name": "Production backend"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    key = ApiKey.objects.for_organization(tenant.organization).get(name="Production backend")
    secret = re.search(rb'data-testid="new-secret"[^>]*|value="(sk_[^"]+)"', response.content)
    secrets_shown = re.findall(rb'value="(sk_[^"]+)"', response.content)
    assert secret and len(secrets_shown) == 1
    secret = secrets_shown[0].decode()
    assert secret.startswith(key.secret_prefix) and key.secret_hash != secret
    assert key.created_by == tenant.owner
    # The secret works against the API and never appears again on the dashboard.
    api = Client().get("/api/v1/organization", HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.status_code == 200
    listing = owner_client.get(reverse("settings-api-keys"))
    assert secret.encode() not in listing.content
    assert key.client_id.encode() in listing.content and key.secret_prefix.encode() in listing.content


def test_generate_key_requires_a_name(owner_client, tenant):
    before = ApiKey.objects.for_organization(tenant.organization).count()
    response = owner_client.post(reverse("settings-api-keys"), {"name": "  "})
    assert response.status_code == 200 and b"required" in response.content
    assert ApiKey.objects.for_organization(tenant.organization).count() == before


def test_key_list_is_paginated(owner_client, tenant):
    for number in range(25):
        api_key_create(organization=tenant.organization, name=f"key {number:02d}")
    first = owner_client.get(reverse("settings-api-keys"))
    assert first.context["page_obj"].paginator.num_pages == 2
    assert b"Page 1 of 2" in first.content
    second = owner_client.get(reverse("settings-api-keys") + "?page=2")
    assert len(second.context["page_obj"]) == 6


def test_revoke_key_asks_for_confirmation_then_revokes(owner_client, tenant):
    key = ApiKey.objects.for_organization(tenant.organization).get()
    url = reverse("settings-api-key-revoke", args=[key.pk])
    confirm = owner_client.get(url)
    assert confirm.status_code == 200 and b"cannot be undone" in confirm.content
    key.refresh_from_db()
    assert key.revoked_at is None
    assert owner_client.post(url).status_code == 302
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert tenant.client().get("/api/v1/organization").status_code == 401


def test_another_organizations_key_is_404_and_untouched(owner_client, other_tenant):
    foreign = ApiKey.objects.for_organization(other_tenant.organization).get()
    url = reverse("settings-api-key-revoke", args=[foreign.pk])
    assert owner_client.get(url).status_code == 404
    assert owner_client.post(url).status_code == 404
    foreign.refresh_from_db()
    assert foreign.revoked_at is None
    assert other_tenant.client().get("/api/v1/organization").status_code == 200


def test_agent_cannot_see_or_create_keys(agent_client, tenant):
    before = ApiKey.objects.for_organization(tenant.organization).count()
    assert agent_client.get(reverse("settings-api-keys")).status_code == 403
    assert agent_client.post(reverse("settings-api-keys"), {"name": "sneaky"}).status_code == 403
    key = ApiKey.objects.for_organization(tenant.organization).first()
    assert agent_client.post(reverse("settings-api-key-revoke", args=[key.pk])).status_code == 403
    assert ApiKey.objects.for_organization(tenant.organization).count() == before
    key.refresh_from_db()
    assert key.revoked_at is None
    # The agent's navigation does not even offer the tab.
    settings_page = agent_client.get(reverse("settings-organization"))
    assert settings_page.status_code == 200 and b"API Keys" not in settings_page.content


def test_key_generation_from_a_foreign_origin_without_csrf_token_is_refused(tenant):
    client = Client(enforce_csrf_checks=True)
    client.force_login(tenant.owner)
    before = ApiKey.objects.for_organization(tenant.organization).count()
    response = client.post(
        reverse("settings-api-keys"),
        {"name": "evil"},
        HTTP_ORIGIN="https://evil.example",
        HTTP_REFERER="https://evil.example/attack",
    )
    assert response.status_code == 403
    assert ApiKey.objects.for_organization(tenant.organization).count() == before
    # Even a valid token does not help a request from a foreign origin.
    client.get(reverse("settings-api-keys"))
    token = client.cookies["csrftoken"].value
    response = client.post(
        reverse("settings-api-keys"),
        {"name": "evil", "csrfmiddlewaretoken": token},
        HTTP_ORIGIN="https://evil.example",
    )
    assert response.status_code == 403
    assert ApiKey.objects.for_organization(tenant.organization).count() == before
    # The same form from our own page works.
    response = client.post(
        reverse("settings-api-keys"),
        {"name": "mine", "csrfmiddlewaretoken": token},
        HTTP_ORIGIN="http://testserver",
    )
    assert response.status_code == 200
    assert ApiKey.objects.for_organization(tenant.organization).count() == before + 1


# --- Members -------------------------------------------------------------------------------


def test_invite_of_a_new_address_creates_nothing_until_it_accepts_with_its_own_password(
    owner_client, tenant, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = owner_client.post(
            reverse("settings-members"), {"email": "New@Acme.example", "role": "agent"}
        )
    assert response.status_code == 302
    assert not get_user_model().objects.filter(username="new@acme.example").exists()
    assert Membership.objects.for_organization(tenant.organization).count() == 1
    assert b"new@acme.example" in owner_client.get(reverse("settings-members")).content  # pending
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["new@acme.example"]
    link = re.search(re.escape(settings.SITE_URL) + r"(/invitations/\S+/)", mail.outbox[0].body).group(1)
    invited = Client()
    page = invited.get(link)
    assert page.status_code == 200 and b"Accept and create my account" in page.content
    # The set-password page names the organization the address is joining.
    assert f"Join {tenant.organization.name}" in page.content.decode()
    weak = invited.post(link, {"action": "create", "password": "password"})
    assert weak.status_code == 200 and b"too common" in weak.content
    joined = invited.post(link, {"action": "create", "name": "New Person", "password": "my-own-pass-987"})
    assert joined.status_code == 302 and joined["Location"] == reverse("overview")
    membership = Membership.objects.for_organization(tenant.organization).get(
        user__username="new@acme.example"
    )
    assert membership.role == "agent"
    # Signed in afterwards, in the organization that invited it.
    overview = invited.get(reverse("overview"))
    assert overview.status_code == 200 and overview.wsgi_request.user.username == "new@acme.example"
    assert tenant.organization.name in overview.content.decode()
    assert invited.get(reverse("settings-api-keys")).status_code == 403
    assert Client().get(link).status_code == 400  # used


def test_invite_validation_and_duplicates(owner_client, tenant):
    response = owner_client.post(reverse("settings-members"), {"email": "not-an-email", "role": "agent"})
    assert response.status_code == 200 and b"valid email" in response.content
    response = owner_client.post(reverse("settings-members"), {"email": tenant.owner.email, "role": "agent"})
    assert response.status_code == 200 and b"already a member" in response.content
    assert Membership.objects.for_organization(tenant.organization).count() == 1


def test_change_role_and_remove_member(owner_client, tenant):
    agent = member_add(tenant, role="agent")
    membership = Membership.objects.for_organization(tenant.organization).get(user=agent)
    owner_client.post(reverse("settings-member-role", args=[membership.pk]), {"role": "admin"})
    membership.refresh_from_db()
    assert membership.role == "admin"
    assert owner_client.get(reverse("settings-member-remove", args=[membership.pk])).status_code == 200
    owner_client.post(reverse("settings-member-remove", args=[membership.pk]))
    assert not Membership.objects.for_organization(tenant.organization).filter(user=agent).exists()


def test_the_last_owner_cannot_be_removed_or_demoted(owner_client, tenant):
    own = Membership.objects.for_organization(tenant.organization).get(user=tenant.owner)
    response = owner_client.post(reverse("settings-member-remove", args=[own.pk]), follow=True)
    assert b"last owner" in response.content
    response = owner_client.post(
        reverse("settings-member-role", args=[own.pk]), {"role": "agent"}, follow=True
    )
    assert b"at least one owner" in response.content
    own.refresh_from_db()
    assert own.role == "owner"


def test_an_admin_cannot_remove_an_owner(tenant):
    admin = Client()
    admin.force_login(member_add(tenant, role="admin"))
    own = Membership.objects.for_organization(tenant.organization).get(user=tenant.owner)
    admin.post(reverse("settings-member-remove", args=[own.pk]))
    admin.post(reverse("settings-member-role", args=[own.pk]), {"role": "agent"})
    own.refresh_from_db()
    assert own.role == "owner"


def test_member_urls_of_another_organization_are_404(owner_client, other_tenant):
    foreign = Membership.objects.for_organization(other_tenant.organization).get()
    assert owner_client.get(reverse("settings-member-remove", args=[foreign.pk])).status_code == 404
    assert owner_client.post(reverse("settings-member-remove", args=[foreign.pk])).status_code == 404
    assert (
        owner_client.post(reverse("settings-member-role", args=[foreign.pk]), {"role": "agent"}).status_code
        == 404
    )
    foreign.refresh_from_db()
    assert foreign.role == "owner"


def test_agent_cannot_manage_members(agent_client, tenant):
    assert agent_client.get(reverse("settings-members")).status_code == 403
    assert (
        agent_client.post(reverse("settings-members"), {"email": "x@y.example", "role": "owner"}).status_code
        == 403
    )
    assert not get_user_model().objects.filter(username="x@y.example").exists()


# --- Organizations: switcher and settings --------------------------------------------------


def test_organization_switcher_only_switches_to_own_organizations(owner_client, tenant, other_tenant):
    from organizations.services import organization_create

    second = organization_create(name="Second Org", owner=tenant.owner)
    response = owner_client.post(reverse("organization-switch"), {"organization": str(second.pk)})
    assert response.status_code == 302
    assert owner_client.session[SESSION_ORGANIZATION_KEY] == str(second.pk)
    assert b"Second Org" in owner_client.get(reverse("settings-organization")).content
    # Not a member of Globex: 404, and the session keeps the current organization.
    response = owner_client.post(
        reverse("organization-switch"), {"organization": str(other_tenant.organization.pk)}
    )
    assert response.status_code == 404
    assert owner_client.post(reverse("organization-switch"), {"organization": "nonsense"}).status_code == 404
    assert owner_client.session[SESSION_ORGANIZATION_KEY] == str(second.pk)


def test_a_stale_session_organization_falls_back_to_a_real_membership(owner_client, tenant, other_tenant):
    session = owner_client.session
    session[SESSION_ORGANIZATION_KEY] = str(other_tenant.organization.pk)
    session.save()
    page = owner_client.get(reverse("settings-organization"))
    assert page.context["organization"] == tenant.organization


def test_user_without_organization_is_asked_to_create_one(client):
    user = get_user_model().objects.create_user(
        username="lone@example.com", email="lone@example.com", password="x-pass-1234"
    )
    client.force_login(user)
    response = client.get(reverse("overview"))
    assert response.status_code == 302 and response["Location"] == reverse("organization-create")
    client.post(reverse("organization-create"), {"name": "Lone Co"})
    assert Membership.objects.for_organization(Organization.objects.get(name="Lone Co")).get().role == "owner"


def test_organization_settings_show_limit_and_this_hours_usage(owner_client, tenant):
    api = tenant.client()
    for _ in range(3):
        assert api.get("/api/v1/organization").status_code == 200
    page = owner_client.get(reverse("settings-organization"))
    assert page.context["used"] == 3
    assert b"1,000" in page.content


def test_rename_organization_escapes_markup(owner_client, tenant, agent_client):
    owner_client.post(reverse("settings-organization"), {"name": "<script>alert(1)</script> Co"})
    tenant.organization.refresh_from_db()
    assert tenant.organization.name == "<script>alert(1)</script> Co"
    page = owner_client.get(reverse("overview"))
    assert b"<script>alert(1)</script>" not in page.content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt; Co" in page.content
    agent_client.post(reverse("settings-organization"), {"name": "Agent rename"})
    tenant.organization.refresh_from_db()
    assert tenant.organization.name != "Agent rename"


def test_after_logging_in_again_the_dashboard_opens_the_organization_last_chosen(client, tenant):
    from organizations.services import organization_create

    # "Zeta" sorts after the tenant's organization, so only the remembered choice can open it.
    zeta = organization_create(name="Zeta Works", owner=tenant.owner)
    credentials = {"username": tenant.owner.email, "password": "correct-horse-battery"}
    assert client.post(reverse("login"), credentials).status_code == 302
    assert client.get(reverse("overview")).context["organization"] == tenant.organization
    client.post(reverse("organization-switch"), {"organization": str(zeta.pk)})
    client.post(reverse("logout"))

    assert client.post(reverse("login"), credentials).status_code == 302
    assert client.get(reverse("overview")).context["organization"] == zeta
    # Another member's choice is theirs alone.
    member = member_add(tenant, role="agent")
    other = Client()
    other.force_login(member)
    assert other.get(reverse("overview")).context["organization"] == tenant.organization
    assert Membership.objects.unscoped().get(user=member).last_selected_at is None


def test_an_invitation_also_confirms_an_unconfirmed_sign_up_of_the_same_address(
    owner_client, tenant, client, django_capture_on_commit_callbacks
):
    client.post(
        reverse("signup"),
        {"email": "half@acme.example", "password": "half-done-pass-1", "organization_name": "Half"},
    )
    assert not get_user_model().objects.get(username="half@acme.example").is_active
    with django_capture_on_commit_callbacks(execute=True):
        owner_client.post(reverse("settings-members"), {"email": "half@acme.example", "role": "agent"})
    link = re.search(re.escape(settings.SITE_URL) + r"(/invitations/\S+/)", mail.outbox[-1].body).group(1)
    invited = Client()
    assert b"Accept and create my account" in invited.get(link).content
    joined = invited.post(link, {"action": "create", "password": "my-own-pass-987"})
    assert joined.status_code == 302
    user = get_user_model().objects.get(username="half@acme.example")
    assert user.is_active and user.check_password("my-own-pass-987")
    assert Membership.objects.for_organization(tenant.organization).filter(user=user, role="agent").exists()
