import pytest

from assistants.models import UserContext

pytestmark = pytest.mark.django_db

SEED_BODY = {
    "user_reference": "user-456",
    "traits": {
        "name": "John Doe",
        "email": "john@example.com",
        "subscription_tier": "premium",
        "preferences": {"language": "en", "notifications": True},
    },
}


def test_seed_curl_create_get_list(tenant):
    api = tenant.client()
    response = api.post("/api/v1/contexts/", SEED_BODY, format="json")
    assert response.status_code == 201, response.content
    data = response.json()["data"]
    assert data["user_reference"] == "user-456" and data["traits"] == SEED_BODY["traits"]
    assert api.get(f"/api/v1/contexts/{data['id']}").json()["data"]["traits"]["name"] == "John Doe"
    listed = api.get("/api/v1/contexts?user_reference=user-456").json()["data"]
    assert listed["count"] == 1


def test_duplicate_reference_is_a_conflict(tenant):
    api = tenant.client()
    assert api.post("/api/v1/contexts/", SEED_BODY, format="json").status_code == 201
    again = api.post("/api/v1/contexts/", SEED_BODY, format="json")
    assert again.status_code == 409 and again.json()["status"] == "error"
    assert UserContext.objects.for_organization(tenant.organization).count() == 1


def test_same_reference_in_two_orgs_is_fine(tenant, other_tenant):
    assert tenant.client().post("/api/v1/contexts/", SEED_BODY, format="json").status_code == 201
    assert other_tenant.client().post("/api/v1/contexts/", SEED_BODY, format="json").status_code == 201


def test_patch_and_delete(tenant):
    api = tenant.client()
    context = UserContext.objects.create(
        organization=tenant.organization, user_reference="u1", traits={"a": 1}
    )
    response = api.patch(f"/api/v1/contexts/{context.id}", {"traits": {"tier": "gold"}}, format="json")
    assert response.status_code == 200
    context.refresh_from_db()
    assert context.traits == {"tier": "gold"} and context.user_reference == "u1"
    assert api.delete(f"/api/v1/contexts/{context.id}/").status_code == 200
    assert not UserContext.objects.for_organization(tenant.organization).exists()


@pytest.mark.parametrize(
    "body",
    [{"traits": {"a": 1}}, {"user_reference": "", "traits": {}}, {"user_reference": "u", "traits": [1, 2]}],
)
def test_validation_failures(tenant, body):
    response = tenant.client().post("/api/v1/contexts/", body, format="json")
    assert response.status_code == 400 and response.json()["data"]
    assert not UserContext.objects.for_organization(tenant.organization).exists()


def test_cross_tenant_is_404_and_changes_nothing(tenant, other_tenant):
    context = UserContext.objects.create(
        organization=tenant.organization, user_reference="u1", traits={"a": 1}
    )
    intruder = other_tenant.client()
    url = f"/api/v1/contexts/{context.id}"
    assert intruder.get(url).status_code == 404
    assert intruder.patch(url, {"traits": {"x": 1}}, format="json").status_code == 404
    assert intruder.delete(url).status_code == 404
    assert intruder.get("/api/v1/contexts/").json()["data"]["count"] == 0
    context.refresh_from_db()
    assert context.traits == {"a": 1}
