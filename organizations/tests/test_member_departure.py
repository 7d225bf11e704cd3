"""What a member made ends with their membership: the API keys they made (revoked unless an
admin keeps them, on removal or on a demotion to agent), the invitations they sent (withdrawn,
and refused at accept time once the sender may no longer grant them), and their dashboard
session's access to the organization (checked on every request)."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from organizations.audit import audit_event_list
from organizations.models import ApiKey, Invitation, Membership
from organizations.services import api_key_create
from testkit.fixtures import member_add

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("fast_password_hashing")]


def assert_error(response, status_code):
    assert response.status_code == status_code, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["status"] == "error" and body["status_code"] == status_code and body["detail"]
    assert "data" in body
    return body


def key_client(secret: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def invite(client: Client, email: str, role: str = "agent", *, capture) -> str:
    """Sends an invitation from `client`'s dashboard; returns the link's path."""
    with capture(execute=True):
        response = client.post(reverse("settings-members"), {"email": email, "role": role})
    assert response.status_code == 302, response.content
    message = [m for m in mail.outbox if m.to == [email]][-1]
    return re.search(re.escape(settings.SITE_URL) + r"(/invitations/\S+/)", message.body).group(1)


@pytest.fixture
def bob(tenant):
    """An admin who made two keys and whose departure is under test."""
    user = member_add(tenant, role="admin", email="bob@acme.example")
    nightly, nightly_secret = api_key_create(
        organization=tenant.organization, name="nightly sync", created_by=user
    )
    crm, crm_secret = api_key_create(organization=tenant.organization, name="crm", created_by=user)
    return {"user": user, "keys": {"nightly": (nightly, nightly_secret), "crm": (crm, crm_secret)}}


def membership_of(tenant, user) -> Membership | None:
    return Membership.objects.for_organization(tenant.organization).filter(user=user).first()


def active(key: ApiKey) -> bool:
    return ApiKey.objects.unscoped().get(pk=key.pk).revoked_at is None


def test_the_removal_page_lists_the_keys_they_made_and_the_invitations_they_sent(
    owner_client, tenant, bob, django_capture_on_commit_callbacks
):
    invite(signed_in(bob["user"]), "friend@elsewhere.example", capture=django_capture_on_commit_callbacks)
    owners_key, _ = api_key_create(
        organization=tenant.organization, name="owner's own", created_by=tenant.owner
    )
    page = owner_client.get(reverse("settings-member-remove", args=[membership_of(tenant, bob["user"]).pk]))
    assert page.status_code == 200
    html = page.content.decode()
    for key, _secret in bob["keys"].values():
        assert key.name in html and key.client_id in html and f'value="{key.pk}"' in html
    assert owners_key.client_id not in html and tenant.client_id not in html  # only what bob made
    assert "friend@elsewhere.example" in html
    assert "Your widgets embed this client ID" not in html  # the tenant's own older key is the widgets'


def test_removing_a_member_revokes_their_keys_withdraws_their_invitations_and_audits_it(
    owner_client, tenant, bob, django_capture_on_commit_callbacks
):
    link = invite(
        signed_in(bob["user"]), "friend@elsewhere.example", capture=django_capture_on_commit_callbacks
    )
    for _key, secret in bob["keys"].values():
        assert key_client(secret).get("/api/v1/assistants").status_code == 200
    response = owner_client.post(
        reverse("settings-member-remove", args=[membership_of(tenant, bob["user"]).pk]), follow=True
    )
    assert "2 API key(s) they made revoked" in response.content.decode()
    assert membership_of(tenant, bob["user"]) is None
    for _key, secret in bob["keys"].values():
        assert_error(key_client(secret).get("/api/v1/assistants"), 401)
    assert tenant.client().get("/api/v1/assistants").status_code == 200  # others' keys untouched
    # The invitation they sent is gone: its link is dead.
    assert Client().get(link).status_code == 400
    assert not Invitation.objects.for_organization(tenant.organization).exists()
    revoked = audit_event_list(organization=tenant.organization, action="api_key.revoked")
    assert {event.target_id for event in revoked} == {str(key.pk) for key, _ in bob["keys"].values()}
    assert all(
        event.changes["reason"] == "member_removed"
        and event.changes["created_by"] == "bob@acme.example"
        and event.actor == tenant.owner.email
        for event in revoked
    )
    removed = audit_event_list(organization=tenant.organization, action="member.removed").get()
    assert sorted(removed.changes["api_keys_revoked"]) == sorted(k.client_id for k, _ in bob["keys"].values())
    assert "api_keys_kept" not in removed.changes
    assert removed.changes["invitations_withdrawn"] == ["friend@elsewhere.example"]
    assert not any(secret in str(e.changes) for e in revoked for _k, secret in bob["keys"].values())


def test_an_admin_may_keep_a_key_that_runs_an_integration_and_the_list_says_whose_it_was(
    owner_client, tenant, bob
):
    nightly, nightly_secret = bob["keys"]["nightly"]
    crm, crm_secret = bob["keys"]["crm"]
    owner_client.post(
        reverse("settings-member-remove", args=[membership_of(tenant, bob["user"]).pk]),
        {"keep": [str(nightly.pk)]},
    )
    assert membership_of(tenant, bob["user"]) is None
    assert key_client(nightly_secret).get("/api/v1/assistants").status_code == 200
    assert_error(key_client(crm_secret).get("/api/v1/assistants"), 401)
    # A kept key works, but does no more than its maker may now: nothing only admins may do.
    assert_error(key_client(nightly_secret).get("/api/v1/audit-events"), 403)
    removed = audit_event_list(organization=tenant.organization, action="member.removed").get()
    assert removed.changes["api_keys_kept"] == [nightly.client_id]
    assert removed.changes["api_keys_revoked"] == [crm.client_id]
    # The API's key list: who made each key and whether they still belong here.
    listed = {
        row["client_id"]: row for row in tenant.client().get("/api/v1/api-keys").json()["data"]["results"]
    }
    assert listed[nightly.client_id]["created_by"] == "bob@acme.example"
    assert listed[nightly.client_id]["created_by_is_member"] is False
    assert listed[nightly.client_id]["is_active"] is True
    assert (
        listed[tenant.client_id]["created_by"] is None
        and listed[tenant.client_id]["created_by_is_member"] is None
    )
    detail = tenant.client().get(f"/api/v1/api-keys/{nightly.pk}").json()["data"]
    assert detail["created_by"] == "bob@acme.example" and detail["created_by_is_member"] is False
    # The dashboard's: the kept key is flagged.
    html = owner_client.get(reverse("settings-api-keys")).content.decode()
    row = html[html.index(nightly.client_id) - 600 : html.index(nightly.client_id)]
    assert "bob@acme.example" in row and "no longer a member" in row


def test_the_key_list_marks_a_current_members_key_as_theirs(owner_client, tenant, bob):
    listed = {
        row["client_id"]: row for row in tenant.client().get("/api/v1/api-keys").json()["data"]["results"]
    }
    crm, _ = bob["keys"]["crm"]
    assert listed[crm.client_id]["created_by"] == "bob@acme.example"
    assert listed[crm.client_id]["created_by_is_member"] is True
    assert "no longer a member" not in owner_client.get(reverse("settings-api-keys")).content.decode()


@pytest.mark.parametrize("keep", ["not-a-uuid", "other-org", "owners-key", "revoked"])
def test_keeping_anything_but_an_active_key_they_made_is_refused_and_changes_nothing(
    owner_client, tenant, other_tenant, bob, keep
):
    other_key = ApiKey.objects.for_organization(other_tenant.organization).get()
    owners_key, _ = api_key_create(organization=tenant.organization, name="owner's", created_by=tenant.owner)
    old, _ = api_key_create(organization=tenant.organization, name="old", created_by=bob["user"])
    old.revoked_at = old.created_at
    old.save(update_fields=["revoked_at"])
    value = {
        "not-a-uuid": "1; DROP TABLE",
        "other-org": str(other_key.pk),
        "owners-key": str(owners_key.pk),
        "revoked": str(old.pk),
    }[keep]
    membership = membership_of(tenant, bob["user"])
    response = owner_client.post(
        reverse("settings-member-remove", args=[membership.pk]),
        {"keep": [str(bob["keys"]["nightly"][0].pk), value]},
        follow=True,
    )
    assert response.status_code == 200
    html = response.content.decode()  # the page says what was wrong
    assert (
        "Choose the keys to keep from the list." in html
        or "Only active API keys this member made can be kept." in html
    )
    assert membership_of(tenant, bob["user"]) is not None
    assert all(active(key) for key, _ in bob["keys"].values())
    assert active(other_key) and active(owners_key)
    assert not audit_event_list(organization=tenant.organization, action="member.removed").exists()
    assert not audit_event_list(organization=tenant.organization, action="api_key.revoked").exists()


def test_another_organizations_admin_cannot_remove_a_member_or_touch_their_keys(foreign_client, tenant, bob):
    membership = membership_of(tenant, bob["user"])
    assert foreign_client.get(reverse("settings-member-remove", args=[membership.pk])).status_code == 404
    response = foreign_client.post(reverse("settings-member-remove", args=[membership.pk]))
    assert response.status_code == 404
    assert membership_of(tenant, bob["user"]) is not None
    assert all(active(key) for key, _ in bob["keys"].values())


def test_a_demotion_to_agent_asks_which_keys_to_keep_then_ends_the_rest(owner_client, tenant, bob):
    nightly, nightly_secret = bob["keys"]["nightly"]
    crm, crm_secret = bob["keys"]["crm"]
    membership = membership_of(tenant, bob["user"])
    url = reverse("settings-member-role", args=[membership.pk])
    asked = owner_client.post(url, {"role": "agent"})
    assert asked.status_code == 200
    html = asked.content.decode()
    assert nightly.client_id in html and crm.client_id in html and 'name="confirm"' in html
    assert membership_of(tenant, bob["user"]).role == "admin"  # nothing changed yet
    assert active(nightly) and active(crm)
    owner_client.post(url, {"role": "agent", "confirm": "1", "keep": [str(crm.pk)]})
    assert membership_of(tenant, bob["user"]).role == "agent"
    assert_error(key_client(nightly_secret).get("/api/v1/assistants"), 401)
    assert key_client(crm_secret).get("/api/v1/assistants").status_code == 200
    changed = audit_event_list(organization=tenant.organization, action="member.role_changed").get()
    assert changed.changes["role"] == ["admin", "agent"]
    assert changed.changes["api_keys_revoked"] == [nightly.client_id]
    assert changed.changes["api_keys_kept"] == [crm.client_id]
    revoked = audit_event_list(organization=tenant.organization, action="api_key.revoked").get()
    assert revoked.target_id == str(nightly.pk) and revoked.changes["reason"] == "member_demoted"


def test_role_changes_that_keep_the_right_to_make_keys_ask_nothing_and_end_nothing(owner_client, tenant, bob):
    membership = membership_of(tenant, bob["user"])
    url = reverse("settings-member-role", args=[membership.pk])
    assert owner_client.post(url, {"role": "owner"}).status_code == 302
    assert owner_client.post(url, {"role": "admin"}).status_code == 302
    assert membership_of(tenant, bob["user"]).role == "admin"
    assert all(active(key) for key, _ in bob["keys"].values())
    # An agent who made nothing is demoted/promoted without a question.
    carol = member_add(tenant, role="admin", email="carol@acme.example")
    carols = membership_of(tenant, carol)
    assert (
        owner_client.post(reverse("settings-member-role", args=[carols.pk]), {"role": "agent"}).status_code
        == 302
    )
    assert membership_of(tenant, carol).role == "agent"


def test_a_removed_members_dashboard_session_loses_the_organization_on_its_next_request(
    owner_client, tenant, other_tenant, bob
):
    bobs = signed_in(bob["user"])
    assert bobs.get(reverse("settings-api-keys")).status_code == 200
    owner_client.post(reverse("settings-member-remove", args=[membership_of(tenant, bob["user"]).pk]))
    # The same session: with no organization left, every page asks for a new one.
    for name in ("overview", "settings-api-keys", "settings-members", "inbox"):
        response = bobs.get(reverse(name))
        assert response.status_code == 302 and response["Location"] == reverse("organization-create"), name
    count = ApiKey.objects.for_organization(tenant.organization).count()
    bobs.post(reverse("settings-api-keys"), {"name": "sneaky"})
    assert ApiKey.objects.for_organization(tenant.organization).count() == count
    # A member of another organization too: the session moves there, never back to the old one.
    Membership.objects.create(organization=other_tenant.organization, user=bob["user"], role="admin")
    page = bobs.get(reverse("settings-api-keys"))
    assert page.status_code == 200 and tenant.client_id not in page.content.decode()
    switched = bobs.post(reverse("organization-switch"), {"organization": str(tenant.organization.pk)})
    assert switched.status_code == 404


def test_an_admin_removing_themselves_ends_their_own_keys_too(tenant, bob):
    bobs = signed_in(bob["user"])
    response = bobs.post(reverse("settings-member-remove", args=[membership_of(tenant, bob["user"]).pk]))
    assert response.status_code == 302 and response["Location"] == reverse("overview")
    assert not any(active(key) for key, _ in bob["keys"].values())


def test_an_invitation_lapses_when_its_sender_may_no_longer_grant_it(
    owner_client, tenant, django_capture_on_commit_callbacks
):
    # An owner invites an owner, then becomes an admin: the owner invitation is no longer theirs to give.
    second = member_add(tenant, role="owner", email="second@acme.example")
    link = invite(
        signed_in(second), "next-owner@elsewhere.example", "owner", capture=django_capture_on_commit_callbacks
    )
    agent_link = invite(
        signed_in(second), "next-agent@elsewhere.example", capture=django_capture_on_commit_callbacks
    )
    # Demoted behind the services' back (a shell, a future code path): the role change would
    # also withdraw the invitation; the accept-time check holds on its own.
    Membership.objects.for_organization(tenant.organization).filter(user=second).update(role="admin")
    assert Client().get(link).status_code == 400
    assert Client().post(link, {"action": "create", "password": "my-own-pass-987"}).status_code == 400
    assert not get_user_model().objects.filter(username="next-owner@elsewhere.example").exists()
    assert Client().get(agent_link).status_code == 200  # an admin may still invite agents
    # The sender's account deleted (Django admin): what they sent lapses with it, and says so.
    get_user_model().objects.filter(pk=second.pk).delete()
    assert Client().get(agent_link).status_code == 400
    assert (
        "a deleted account — this link no longer works"
        in owner_client.get(reverse("settings-members")).content.decode()
    )
    joined = Client().post(agent_link, {"action": "create", "password": "my-own-pass-987"})
    assert joined.status_code == 400
    assert (
        not Membership.objects.for_organization(tenant.organization)
        .filter(user__username="next-agent@elsewhere.example")
        .exists()
    )


def test_an_admin_cannot_invite_an_owner(tenant):
    admin = signed_in(member_add(tenant, role="admin", email="ann@acme.example"))
    response = admin.post(reverse("settings-members"), {"email": "puppet@elsewhere.example", "role": "owner"})
    assert response.status_code == 200 and "Only an owner can invite an owner." in response.content.decode()
    assert not Invitation.objects.for_organization(tenant.organization).exists()
    assert (
        admin.post(
            reverse("settings-members"), {"email": "new-admin@elsewhere.example", "role": "admin"}
        ).status_code
        == 302
    )


def test_a_deleted_accounts_key_does_not_turn_into_an_operators_key(owner_client, tenant, bob):
    """Found here: `created_by` is set to null when the account is deleted (Django admin, a
    shell), and a key without a maker is an operator command's, which may administer. The
    maker's address is now kept with the key, so such a key stays a former member's."""
    nightly, nightly_secret = bob["keys"]["nightly"]
    owner_client.post(
        reverse("settings-member-remove", args=[membership_of(tenant, bob["user"]).pk]),
        {"keep": [str(nightly.pk)]},
    )
    get_user_model().objects.filter(pk=bob["user"].pk).delete()
    key = ApiKey.objects.for_organization(tenant.organization).get(pk=nightly.pk)
    assert key.created_by_id is None and key.created_by_email == "bob@acme.example"
    bobs = key_client(nightly_secret)
    assert bobs.get("/api/v1/assistants").status_code == 200  # kept: it still works…
    assert_error(bobs.get("/api/v1/audit-events"), 403)  # …but administers nothing
    assert_error(bobs.post("/api/v1/api-keys", {"name": "escalated"}, format="json"), 403)
    assert_error(bobs.post("/api/v1/privacy/erase", {"customer_id": "c-1"}, format="json"), 403)
    listed = {
        row["client_id"]: row for row in tenant.client().get("/api/v1/api-keys").json()["data"]["results"]
    }
    assert listed[nightly.client_id]["created_by"] == "bob@acme.example"
    assert listed[nightly.client_id]["created_by_is_member"] is False
    html = owner_client.get(reverse("settings-api-keys")).content.decode()
    row = html[html.index(nightly.client_id) - 600 : html.index(nightly.client_id)]
    assert "bob@acme.example" in row and "no longer a member" in row
    # A key made by an operator command (no maker at all) still may.
    assert tenant.client().get("/api/v1/audit-events").status_code == 200


def test_the_migration_remembers_the_makers_of_existing_keys(tenant, bob):
    from importlib import import_module

    from django.apps import apps

    migration = import_module("organizations.migrations.0013_api_key_created_by_email")
    nightly, _ = bob["keys"]["nightly"]
    ApiKey.objects.for_organization(tenant.organization).update(created_by_email="")  # as before the field
    migration.remember_makers(apps, None)
    keys = {key.pk: key for key in ApiKey.objects.for_organization(tenant.organization)}
    assert keys[nightly.pk].created_by_email == "bob@acme.example"
    assert (
        keys[
            ApiKey.objects.for_organization(tenant.organization).get(client_id=tenant.client_id).pk
        ].created_by_email
        == ""
    )


def test_an_owner_made_admin_loses_the_owner_invitations_they_sent_and_only_those(
    owner_client, tenant, django_capture_on_commit_callbacks
):
    second = member_add(tenant, role="owner", email="second@acme.example")
    capture = django_capture_on_commit_callbacks
    owner_link = invite(signed_in(second), "next-owner@elsewhere.example", "owner", capture=capture)
    admin_link = invite(signed_in(second), "next-admin@elsewhere.example", "admin", capture=capture)
    response = owner_client.post(
        reverse("settings-member-role", args=[membership_of(tenant, second).pk]),
        {"role": "admin"},
        follow=True,
    )
    assert "1 invitation(s) they sent withdrawn" in response.content.decode()
    assert Client().get(owner_link).status_code == 400
    assert Client().get(admin_link).status_code == 200
    changed = audit_event_list(organization=tenant.organization, action="member.role_changed").get()
    assert changed.changes["invitations_withdrawn"] == ["next-owner@elsewhere.example"]
    assert list(Invitation.objects.for_organization(tenant.organization).values_list("email", flat=True)) == [
        "next-admin@elsewhere.example"
    ]
