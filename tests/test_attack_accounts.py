"""The front door (issue 13, items 4–7), attacked on a real gunicorn over loopback.

Mail is written by Django's file backend into a directory the test reads, so what a victim
would receive is checked as sent."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
import requests

from testkit.fixtures import tenant_create
from tests.conftest import assert_error_shape
from widget.services import widget_create

pytestmark = [pytest.mark.django_db(transaction=True)]

SITE_URL = "http://support.local.test:8400"
SHOP = "https://shop.example.com"


def _mails(directory: Path) -> list[str]:
    return [path.read_text() for path in sorted(directory.glob("*.log"))] if directory.exists() else []


def _csrf(session: requests.Session, url: str) -> str:
    page = session.get(url, timeout=30)
    assert page.status_code == 200, (page.status_code, page.text[:300])
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)


@pytest.fixture
def mail_env(live_env, tmp_path):
    outbox = tmp_path / "outbox"
    return outbox, dict(
        live_env,
        LOG_LEVEL="WARNING",
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(outbox),
    )


def test_a_forged_host_header_is_refused_by_default(procs, mail_env):
    """Default ALLOWED_HOSTS are the local addresses: `Host: evil.example` never reaches a view."""
    tenant = tenant_create("Hosted")
    outbox, env = mail_env
    env.pop("ALLOWED_HOSTS", None)
    env.pop("SITE_URL", None)
    _web, url = procs.gunicorn(env=env, workers=1)
    session = requests.Session()
    token = _csrf(session, f"{url}/password-reset/")
    forged = session.post(
        f"{url}/password-reset/",
        data={"email": tenant.owner.email, "csrfmiddlewaretoken": token},
        headers={"Host": "evil.example", "Cookie": f"csrftoken={session.cookies['csrftoken']}"},
        timeout=30,
        allow_redirects=False,
    )
    assert forged.status_code == 400
    assert _mails(outbox) == []
    minted = requests.post(
        f"{url}/api/v1/auth/widget-token",
        json={"client_id": tenant.client_id},
        headers={"Host": "evil.example", "Origin": "http://evil.example"},
        timeout=30,
    )
    assert_error_shape(minted, 400)
    # Django's admin (one more sign-in form) is not mounted unless ADMIN_ENABLED.
    assert requests.get(f"{url}/admin/login/", timeout=30).status_code == 404
    port = url.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        assert requests.get(f"{url}/login/", headers={"Host": host}, timeout=30).status_code == 200


def test_links_and_own_origin_come_from_site_url_not_the_host_header(procs, mail_env):
    """Even with every Host allowed (an operator's ALLOWED_HOSTS=*), a reset requested with
    `Host: evil.example` links to SITE_URL, and Origin = Host = evil.example mints nothing."""
    tenant = tenant_create("Poisoned")
    widget = widget_create(organization=tenant.organization, allowed_domains=[SHOP], title="Shop")
    outbox, env = mail_env
    _web, url = procs.gunicorn(env=dict(env, ALLOWED_HOSTS="*", SITE_URL=SITE_URL), workers=1)
    session = requests.Session()
    token = _csrf(session, f"{url}/password-reset/")
    response = session.post(
        f"{url}/password-reset/",
        data={"email": tenant.owner.email, "csrfmiddlewaretoken": token},
        # requests picks cookies by the Host header: hand the CSRF cookie over explicitly.
        headers={"Host": "evil.example", "Cookie": f"csrftoken={session.cookies['csrftoken']}"},
        timeout=30,
        allow_redirects=False,
    )
    assert response.status_code == 302, response.text[:300]
    (mail,) = _mails(outbox)
    assert "evil.example" not in mail
    assert f"{SITE_URL}/password-reset/" in mail

    mint = f"{url}/api/v1/auth/widget-token"
    body = {"client_id": tenant.client_id, "config_id": str(widget.pk)}
    for headers in (
        {"Host": "evil.example", "Origin": "http://evil.example"},
        {"Host": "evil.example", "Origin": "https://evil.example"},
    ):
        assert_error_shape(requests.post(mint, json=body, headers=headers, timeout=30), 403)
    # Our own origin (the hosted frame, the dashboard preview) and the allowed shop still mint.
    for origin in (SITE_URL, SHOP):
        minted = requests.post(mint, json=body, headers={"Origin": origin}, timeout=30)
        assert minted.status_code == 200, minted.text


# --- Item 4: throttling; item 5: no account enumeration -----------------------------------------

THROTTLES = {
    "AUTH_LOGIN_RATE_PER_ACCOUNT": "5/15m",
    "AUTH_LOGIN_RATE_PER_IP": "12/15m",
    "AUTH_RESET_RATE_PER_IP": "30/h",
    "AUTH_SIGNUP_RATE_PER_IP": "4/h",
    "AUTH_MAIL_RATE_PER_ADDRESS": "3/h",
}


class Browser:
    """A cookie-keeping client that submits the dashboard's forms as a browser would."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()

    def submit(self, path: str, data: dict) -> requests.Response:
        token = _csrf(self.session, f"{self.url}{path}")
        return self.session.post(
            f"{self.url}{path}",
            data={**data, "csrfmiddlewaretoken": token},
            headers={"Referer": f"{self.url}{path}"},
            allow_redirects=False,
            timeout=60,
        )

    def login(self, email: str, password: str) -> requests.Response:
        return self.submit("/login/", {"username": email, "password": password})


def _page(response: requests.Response) -> str:
    """A page's text without its per-request CSRF token and the address typed into it."""
    text = re.sub(r"\b[A-Za-z0-9]{64}\b", "", response.text)  # CSRF tokens (form field, hx-headers)
    text = re.sub(r'value="[^"]*@[^"]*"', 'value=""', text)
    # How long a pause lasts depends on where each address's window started, not on the address.
    return re.sub(r"\d+ minutes?", "N minutes", text)


def _clear_of_a_window_edge(margin: float = 60.0) -> None:
    """The throttles count in fixed windows aligned to the clock (15 min, 1 h): attempts that
    straddle an edge are counted in two windows and never reach the limit. Start a test that
    counts attempts at least `margin` seconds before the next 15-minute edge."""
    to_edge = 900 - time.time() % 900
    if to_edge < margin:
        time.sleep(to_edge + 1)


@pytest.fixture
def throttled(procs, mail_env):
    tenant = tenant_create("Front Door")
    outbox, env = mail_env
    _web, url = procs.gunicorn(env=dict(env, SITE_URL=SITE_URL, ADMIN_ENABLED="true", **THROTTLES), workers=1)
    # After the server is up, just before the test counts: on a loaded machine its start alone
    # took a good part of the margin, and the attempts then straddled an edge.
    _clear_of_a_window_edge()
    return tenant, outbox, url


def test_the_admin_sign_in_when_enabled_shares_the_account_throttle(throttled):
    tenant, outbox, url = throttled
    from django.contrib.auth import get_user_model

    get_user_model().objects.filter(pk=tenant.owner.pk).update(is_staff=True, is_superuser=True)
    attacker = Browser(url)
    form = {"username": tenant.owner.email, "next": "/admin/"}
    statuses = [
        attacker.submit("/admin/login/", {**form, "password": f"guess-{n}"}).status_code for n in range(5)
    ]
    assert statuses == [200] * 5
    locked = attacker.submit("/admin/login/", {**form, "password": "correct-horse-battery"})
    assert "paused" in locked.text and "sessionid" not in locked.headers.get("Set-Cookie", "")
    # The same account's dashboard sign-in is paused too, and its owner was emailed.
    assert Browser(url).login(tenant.owner.email, "correct-horse-battery").status_code == 429
    assert len(_mails(outbox)) == 1


def test_wrong_passwords_lock_the_account_and_email_an_unlock_link(throttled):
    """Was: 60 wrong passwords in 14 s all answered, then the right one logged in."""
    tenant, outbox, url = throttled
    attacker = Browser(url)
    email = tenant.owner.email
    answers = [attacker.login(email, f"guess-{n}") for n in range(5)]
    assert [answer.status_code for answer in answers] == [200] * 5  # "wrong email or password"
    assert int(answers[-1].headers["X-RateLimit-Limit"]) == 12
    locked = attacker.login(email, "correct-horse-battery")  # the right password, too late
    assert locked.status_code == 429, locked.text[:300]
    assert "paused" in locked.text and int(locked.headers["Retry-After"]) > 0
    assert "sessionid" not in locked.headers.get("Set-Cookie", "")
    owner = Browser(url)
    assert owner.login(email, "correct-horse-battery").status_code == 429  # per account, not per client

    # The owner was emailed once, with a reset link on SITE_URL; choosing a new password unlocks.
    (mail,) = _mails(outbox)
    assert email in mail and "paused" in mail
    link = re.search(re.escape(SITE_URL) + r"(/password-reset/\S+/)", mail).group(1)
    form = owner.session.get(f"{url}{link}", timeout=30)
    assert form.status_code == 200 and "new_password1" in form.text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
    saved = owner.session.post(
        form.url,
        data={
            "new_password1": "a-brand-new-passphrase",
            "new_password2": "a-brand-new-passphrase",
            "csrfmiddlewaretoken": token,
        },
        allow_redirects=False,
        timeout=60,
    )
    assert saved.status_code == 302, saved.text[:300]
    welcome = owner.login(email, "a-brand-new-passphrase")
    assert welcome.status_code == 302 and "sessionid" in welcome.headers.get("Set-Cookie", "")

    # An address with no account answers exactly the same, and nobody is emailed.
    ghost = Browser(url)
    ghost_answers = [ghost.login("nobody@nowhere.example", f"guess-{n}") for n in range(6)]
    assert [answer.status_code for answer in ghost_answers] == [200] * 5 + [429]
    assert _page(ghost_answers[-1]) == _page(locked)
    assert _page(ghost_answers[0]) == _page(answers[0])
    assert len(_mails(outbox)) == 1  # only the real owner's lockout email


def test_password_spraying_from_one_ip_is_throttled(throttled):
    tenant, _outbox, url = throttled
    sprayer = Browser(url)
    statuses = [sprayer.login(f"user{n}@spray.example", "Winter2026!").status_code for n in range(13)]
    assert statuses == [200] * 12 + [429]
    refused = sprayer.login(tenant.owner.email, "correct-horse-battery")
    assert refused.status_code == 429 and "from your network" in refused.text


def test_reset_and_sign_up_are_throttled_and_say_nothing_about_the_address(throttled):
    tenant, outbox, url = throttled
    visitor = Browser(url)
    existing, new = tenant.owner.email, "newcomer@fresh.example"

    # Password reset: the same answer for both; 25 requests for one address send 3 emails.
    resets = [visitor.submit("/password-reset/", {"email": existing}) for _ in range(25)]
    assert {(r.status_code, r.headers["Location"]) for r in resets} == {(302, "/password-reset/sent/")}
    assert len(_mails(outbox)) == 3
    other = visitor.submit("/password-reset/", {"email": new})
    assert (other.status_code, other.headers["Location"]) == (302, "/password-reset/sent/")
    assert len(_mails(outbox)) == 3  # no account, no email; the same page
    over = [visitor.submit("/password-reset/", {"email": existing}) for _ in range(5)]
    assert over[-1].status_code == 429 and "Retry-After" in over[-1].headers

    # Sign-up: an existing address and a new one get the same page; each learns by email.
    signup = {"name": "Ada", "password": "analytical-engine-1843", "organization_name": "Engines"}
    taken = Browser(url).submit("/signup/", {**signup, "email": existing})
    fresh = Browser(url).submit("/signup/", {**signup, "email": new})
    assert (taken.status_code, taken.headers["Location"]) == (fresh.status_code, fresh.headers["Location"])
    assert taken.headers["Location"] == "/signup/sent/"
    mails = _mails(outbox)[3:]
    assert len(mails) == 2
    assert "already has one" in next(mail for mail in mails if existing in mail)
    confirm = next(mail for mail in mails if new in mail)
    link = re.search(re.escape(SITE_URL) + r"(/signup/confirm/\S+/)", confirm).group(1)

    # Before the link: the new account cannot sign in (the same answer as a wrong password).
    before = Browser(url).login(new, "analytical-engine-1843")
    assert before.status_code == 200 and _page(before) == _page(
        Browser(url).login(existing, "wrong-password")
    )
    newcomer = Browser(url)
    page = newcomer.session.get(f"{url}{link}", timeout=30)
    assert page.status_code == 200
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    done = newcomer.session.post(
        f"{url}{link}", data={"csrfmiddlewaretoken": token}, allow_redirects=False, timeout=30
    )
    assert done.status_code == 302 and done.headers["Location"] == "/"
    assert "Engines" in newcomer.session.get(f"{url}/", timeout=30).text

    # Sign-up floods from one IP are refused (4/h here), with the rate-limit headers.
    flood = [Browser(url) for _ in range(3)]
    statuses = [
        b.submit("/signup/", {**signup, "email": f"bot{n}@spam.example"}).status_code
        for n, b in enumerate(flood)
    ]
    assert statuses == [302, 302, 429]


# --- Item 7: an invitation needs the invitee's consent ------------------------------------------


def test_inviting_an_existing_account_changes_nothing_until_it_accepts(procs, mail_env):
    """Was: inviting an existing account made it an active admin at once, and its next sign-in
    opened the inviting organization."""
    victim = tenant_create("Victim Co")
    inviter = tenant_create("Pushy Inc")
    outbox, env = mail_env
    _web, url = procs.gunicorn(env=dict(env, SITE_URL=SITE_URL), workers=1)
    from organizations.models import Membership

    admin = Browser(url)
    assert admin.login(inviter.owner.email, "correct-horse-battery").status_code == 302
    sent = admin.submit("/settings/members/", {"email": victim.owner.email, "role": "admin"})
    assert sent.status_code == 302, sent.text[:300]
    assert not Membership.objects.for_organization(inviter.organization).filter(user=victim.owner).exists()

    # The invitee signs in: their own organization opens, the inviter's is not theirs.
    invitee = Browser(url)
    assert invitee.login(victim.owner.email, "correct-horse-battery").status_code == 302
    home = invitee.session.get(f"{url}/", timeout=30)
    assert "Victim Co" in home.text and "Pushy Inc" not in home.text
    (mail,) = _mails(outbox)
    link = re.search(re.escape(SITE_URL) + r"(/invitations/\S+/)", mail).group(1)

    # Someone else holding the link cannot accept it for them.
    stranger = Browser(url)
    assert stranger.login(inviter.owner.email, "correct-horse-battery").status_code == 302
    refused = stranger.submit(link, {"action": "accept"})
    assert refused.status_code in (400, 403)
    assert not Membership.objects.for_organization(inviter.organization).filter(user=victim.owner).exists()

    # Declining changes nothing and kills the link.
    declined = invitee.submit(link, {"action": "decline"})
    assert declined.status_code == 302
    assert not Membership.objects.for_organization(inviter.organization).filter(user=victim.owner).exists()
    assert invitee.session.get(f"{url}{link}", timeout=30).status_code == 400

    # A new invitation, accepted: only now are they a member, with the role offered.
    admin.submit("/settings/members/", {"email": victim.owner.email, "role": "agent"})
    link = re.search(re.escape(SITE_URL) + r"(/invitations/\S+/)", _mails(outbox)[-1]).group(1)
    accepted = invitee.submit(link, {"action": "accept"})
    assert accepted.status_code == 302 and accepted.headers["Location"] == "/"
    membership = Membership.objects.for_organization(inviter.organization).get(user=victim.owner)
    assert membership.role == "agent"
