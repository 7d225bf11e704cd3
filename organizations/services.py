from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import logging
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.text import slugify

from core.errors import Conflict, PermissionDenied, ValidationFailed
from organizations.models import ApiKey, Event, Invitation, LLMUsageDay, Membership, Organization
from organizations.selectors import admin_mail_recipients, utc_today

logger = logging.getLogger(__name__)

SECRET_PREFIX = "sk_"
LAST_USED_RESOLUTION_SECONDS = 60


def _unique_slug(name: str) -> str:
    base = slugify(name)[:60] or "org"
    slug, counter = base, 2
    while Organization.objects.filter(slug=slug).exists():
        slug = f"{base}-{counter}"
        counter += 1
    return slug


@transaction.atomic
def organization_create(
    *,
    name: str,
    owner_email: str | None = None,
    owner_password: str | None = None,
    owner=None,
    rate_limit_per_hour: int | None = None,
    llm_daily_token_budget: int | None | object = ...,
    slug: str | None = None,
) -> Organization:
    """`llm_daily_token_budget`: left out = LLM_DAILY_TOKEN_BUDGET, None = unlimited."""
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("Organization name is required.")
    if slug and Organization.objects.filter(slug=slug).exists():
        raise Conflict(f"An organization with slug '{slug}' already exists.")
    organization = Organization(name=name, slug=slug or _unique_slug(name))
    if rate_limit_per_hour is not None:
        if rate_limit_per_hour < 1:
            raise ValidationFailed("rate_limit_per_hour must be at least 1.")
        organization.rate_limit_per_hour = rate_limit_per_hour
    if llm_daily_token_budget is not ...:
        organization.llm_daily_token_budget = llm_daily_token_budget_clean(llm_daily_token_budget)
    organization.save()
    if owner is None and owner_email:
        owner = user_get_or_create(email=owner_email, password=owner_password)
    if owner is not None:
        membership_create(organization=organization, user=owner, role=Membership.Role.OWNER)
    return organization


def user_get_or_create(*, email: str, password: str | None):
    User = get_user_model()
    email = email.strip().lower()
    user = User.objects.filter(username=email).first()
    if user is None:
        user = User(username=email, email=email)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save()
    return user


def membership_create(*, organization: Organization, user, role: str) -> Membership:
    try:
        with transaction.atomic():
            return Membership.objects.create(organization=organization, user=user, role=role)
    except IntegrityError:
        raise Conflict("That user is already a member of this organization.") from None


def membership_select(*, organization: Organization, user) -> None:
    """Remember `organization` as the one `user` last worked in (the dashboard opens there)."""
    Membership.objects.for_organization(organization).filter(user=user).update(
        last_selected_at=timezone.now()
    )


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def api_key_create(*, organization: Organization, name: str, created_by=None) -> tuple[ApiKey, str]:
    """Returns the key and its secret. The secret is not stored and cannot be shown again."""
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("API key name is required.")
    for _attempt in range(5):
        lookup = secrets.token_hex(6)
        secret = f"{SECRET_PREFIX}{lookup}_{secrets.token_urlsafe(32)}"
        try:
            with transaction.atomic():
                api_key = ApiKey.objects.create(
                    organization=organization,
                    name=name[:100],
                    client_id=f"ci_{secrets.token_hex(12)}",
                    secret_prefix=f"{SECRET_PREFIX}{lookup}",
                    secret_hash=_hash_secret(secret),
                    created_by=created_by,
                    created_by_email=(created_by.email or created_by.username) if created_by else "",
                )
            return api_key, secret
        except IntegrityError:
            continue
    raise Conflict("Could not allocate a unique API key; try again.")


def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])
    return api_key


def _secret_matches(api_key: ApiKey, secret: str) -> bool:
    return hmac.compare_digest(api_key.secret_hash, _hash_secret(secret))


def _verified(api_key: ApiKey | None, secret: str) -> ApiKey | None:
    if api_key is None or api_key.revoked_at is not None:
        # Hash anyway, so an unknown key costs as long as a known one.
        _hash_secret(secret)
        return None
    if not _secret_matches(api_key, secret):
        return None
    api_key_mark_used(api_key=api_key)
    return api_key


def api_key_verify_pair(*, client_id: str, secret: str) -> ApiKey | None:
    api_key = ApiKey.objects.unscoped().select_related("organization").filter(client_id=client_id).first()
    return _verified(api_key, secret)


def api_key_verify_secret(*, secret: str) -> ApiKey | None:
    """Bearer secret: `sk_<lookup>_<random>` → one indexed lookup on the prefix."""
    parts = secret.split("_", 2)
    if len(parts) != 3 or not parts[1]:
        return None
    api_key = (
        ApiKey.objects.unscoped()
        .select_related("organization")
        .filter(secret_prefix=f"{SECRET_PREFIX}{parts[1]}")
        .first()
    )
    return _verified(api_key, secret)


def api_key_mark_used(*, api_key: ApiKey) -> None:
    """Record last use at most once a minute per key, not one write per request.

    The key's row was just read to verify the request, so its `last_used_at` tells whether
    this minute is recorded already: a request within the minute sends nothing, the first one
    after it one conditional UPDATE, which finds nothing to do if another process's request
    wrote it first. It was a cache `add` per request: with the Postgres cache (`make run`'s
    default) five statements whose INSERT failed on the existing key whenever the minute was
    recorded — an ERROR in Postgres's log on nearly every API request, and the ROLLBACK made
    psycopg drop the connection's prepared statements (docs/benchmarks.md)."""
    now = timezone.now()
    resolution = timedelta(seconds=LAST_USED_RESOLUTION_SECONDS)
    if api_key.last_used_at is not None and now - api_key.last_used_at < resolution:
        return
    ApiKey.objects.unscoped().filter(pk=api_key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=now - resolution)
    ).update(last_used_at=now)
    api_key.last_used_at = now


# --- Dashboard: organization settings and members -----------------------------------------


def organization_update(*, organization: Organization, name: str) -> Organization:
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("Organization name is required.")
    organization.name = name[:200]
    organization.save(update_fields=["name"])
    return organization


MAX_RETENTION_DAYS = 3650


def organization_privacy_update(
    *, organization: Organization, retention_days: int | None, keep_original_files: bool
) -> Organization:
    """The retention period (days; None = keep) and whether uploaded originals are kept."""
    if retention_days is not None and not (1 <= retention_days <= MAX_RETENTION_DAYS):
        message = f"Between 1 and {MAX_RETENTION_DAYS} days, or empty to keep conversations."
        raise ValidationFailed(f"retention_days: {message}", details={"retention_days": [message]})
    organization.retention_days = retention_days
    organization.keep_original_files = bool(keep_original_files)
    organization.save(update_fields=["retention_days", "keep_original_files"])
    return organization


def _owner_count(*, organization: Organization) -> int:
    return Membership.objects.for_organization(organization).filter(role=Membership.Role.OWNER).count()


def _set_password_link(*, user, base_url: str) -> str:
    from django.contrib.auth.tokens import default_token_generator
    from django.urls import reverse
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    path = reverse(
        "password-reset-confirm",
        kwargs={
            "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
            "token": default_token_generator.make_token(user),
        },
    )
    return base_url.rstrip("/") + path


SIGNUP_SALT = "organizations.signup"
SIGNUP_LINK_MAX_AGE = 3 * 24 * 3600


def account_is_established(*, user) -> bool:
    """An account someone owns (active, or signed in before), not a sign-up awaiting its
    confirmation link."""
    return user.is_active or user.last_login is not None


def account_signup_request(*, email: str, password: str, name: str, organization_name: str) -> None:
    """Sign-up, step 1: nothing is usable until the address proves it is read by its owner.

    A new address gets an inactive user and an email with a confirmation link (which creates
    the organization); an address that already has an account gets an email saying so. The
    page the visitor sees, and the work done (one password hash), are the same either way,
    so sign-up tells nobody whether an address has an account.
    """
    from django.conf import settings
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.tokens import default_token_generator
    from django.core import signing
    from django.core.mail import send_mail
    from django.urls import reverse

    email = email.strip().lower()
    User = get_user_model()
    user = User.objects.filter(username=email).first()
    site = settings.SITE_URL
    if user is not None and account_is_established(user=user):
        make_password(password)  # the same cost as a new sign-up: timing says nothing either
        subject = "Your SupportAI sign-up"
        body = (
            "Someone (hopefully you) tried to create a SupportAI account with this address, but "
            "it already has one.\n\n"
            f"Sign in: {site}{reverse('login')}\n"
            f"Forgot your password? {site}{reverse('password-reset')}\n\n"
            "If it was not you, ignore this email; nothing has changed.\n"
        )
    else:
        # New, or never confirmed: the latest sign-up's password counts, and any earlier
        # confirmation link dies with the old password hash (it is part of the token).
        if user is None:
            user = User(username=email, email=email, is_active=False)
        user.set_password(password)
        first, _, last = (name or "").strip().partition(" ")
        user.first_name, user.last_name = first[:150], last[:150]
        user.save()
        token = signing.dumps(
            {"u": user.pk, "o": organization_name[:200], "t": default_token_generator.make_token(user)},
            salt=SIGNUP_SALT,
            compress=True,
        )
        subject = "Your SupportAI sign-up"
        body = (
            "Confirm your email address to finish creating your SupportAI account "
            f"and {organization_name}:\n\n{site}{reverse('signup-verify', args=[token])}\n\n"
            "The link works once and expires in 3 days. If you did not sign up, ignore this email.\n"
        )
    try:
        send_mail(
            subject=subject, message=body, from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=[email]
        )
    except Exception as error:
        logger.warning("could not send the sign-up email (%s)", error.__class__.__name__)


def account_signup_pending(*, token: str):
    """The inactive user a confirmation link is for, and its organization name, or None."""
    from django.contrib.auth.tokens import default_token_generator
    from django.core import signing

    try:
        data = signing.loads(token, salt=SIGNUP_SALT, max_age=SIGNUP_LINK_MAX_AGE)
        user = (
            get_user_model()
            .objects.filter(pk=int(data["u"]), is_active=False, last_login__isnull=True)
            .first()
        )
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    if user is None or not default_token_generator.check_token(user, str(data.get("t", ""))):
        return None
    return user, str(data.get("o") or "My organization")


@transaction.atomic
def account_signup_confirm(*, token: str):
    """Sign-up, step 2: activates the user and creates their organization; None if the link
    is invalid, expired or used. Returns (user, organization)."""
    pending = account_signup_pending(token=token)
    if pending is None:
        return None
    user, organization_name = pending
    user.is_active = True
    user.save(update_fields=["is_active"])
    organization = organization_create(name=organization_name, owner=user)
    return user, organization


def account_lockout_notify(*, email: str, minutes: int) -> bool:
    """Tell the owner of `email` (if it has an account) that sign-in is paused after repeated
    wrong passwords, with a link to choose a new password, which also ends the pause (the
    failure counter is keyed by the password hash). Returns whether an email was sent."""
    from django.conf import settings
    from django.core.mail import send_mail

    user = get_user_model().objects.filter(username=email, is_active=True).first()
    if user is None or not user.email:
        return False
    link = _set_password_link(user=user, base_url=settings.SITE_URL)
    body = (
        "Someone tried to sign in to your SupportAI account with a wrong password too many times, "
        f"so signing in is paused for {minutes} minute{'' if minutes == 1 else 's'}.\n\n"
        "If it was you, choose a new password now; that also ends the pause:\n"
        f"{link}\n\n"
        "If it was not you, your account is safe: nobody got in. The link works once and expires "
        "in a few days.\n"
    )
    try:
        send_mail(
            subject="Sign-in to your SupportAI account is paused",
            message=body,
            from_email=settings.DEFAULT_FROM_EMAIL,
            recipient_list=[user.email],
        )
    except Exception as error:  # the mail server being down must not turn a login into a 500
        logger.warning("could not send the lockout email (%s)", error.__class__.__name__)
        return False
    return True


INVITATION_MAX_AGE = timedelta(days=7)


def _invitation_token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def member_invite(
    *, organization: Organization, email: str, role: str, invited_by, base_url: str
) -> Invitation:
    """Invites `email` to the organization: an email with a link, and nothing else.

    No membership and no user are created here. The invitee opens the link and accepts (or
    declines): someone with an account signs in first, a new address chooses a password on
    that page. A second invitation to the same address replaces the first (the old link dies).
    The email is the same whether or not the address has an account.
    """
    from django.conf import settings
    from django.core.mail import send_mail
    from django.core.validators import validate_email
    from django.urls import reverse

    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except Exception:
        raise ValidationFailed("Enter a valid email address.")
    if role not in Membership.Role.values:
        raise ValidationFailed("Unknown role.")
    if role == Membership.Role.OWNER and getattr(invited_by, "pk", None):
        inviter = Membership.objects.for_organization(organization).filter(user=invited_by).first()
        if inviter is None or inviter.role != Membership.Role.OWNER:
            # Admins manage agents and admins; an owner invitation would make one.
            raise PermissionDenied("Only an owner can invite an owner.")
    if Membership.objects.for_organization(organization).filter(user__username=email).exists():
        raise Conflict("That user is already a member of this organization.")
    Invitation.objects.for_organization(organization).filter(
        email=email, accepted_at__isnull=True, declined_at__isnull=True
    ).delete()
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        organization=organization,
        email=email,
        role=role,
        invited_by=invited_by if getattr(invited_by, "pk", None) else None,
        token_hash=_invitation_token_hash(token),
        sent_at=timezone.now(),
    )
    inviter = getattr(invited_by, "email", "") or "A teammate"
    link = base_url.rstrip("/") + reverse("invitation", args=[token])
    body = (
        f"{inviter} invited you to join {organization.name} on SupportAI as {role}.\n\n"
        f"Open the invitation to accept or decline it: {link}\n\n"
        "Nothing changes until you accept. The link expires in 7 days.\n"
    )
    subject = f"You're invited to {' '.join(organization.name.split())} on SupportAI"
    transaction.on_commit(
        lambda: send_mail(
            subject=subject, message=body, from_email=settings.DEFAULT_FROM_EMAIL, recipient_list=[email]
        )
    )
    return invitation


def invitation_get_open(*, token: str) -> Invitation | None:
    """The open, unexpired invitation a link's token is for (any organization: the token is
    the credential), or None."""
    invitation = (
        Invitation.objects.unscoped()
        .select_related("organization", "invited_by")
        .filter(
            token_hash=_invitation_token_hash(token or ""), accepted_at__isnull=True, declined_at__isnull=True
        )
        .first()
    )
    if invitation is None or invitation.sent_at < timezone.now() - INVITATION_MAX_AGE:
        return None
    if not invitation_inviter_may_grant(invitation=invitation):
        return None
    return invitation


def invitation_inviter_may_grant(*, invitation: Invitation) -> bool:
    """Whether the person who sent the invitation may still grant its role: an owner or admin
    of the organization now (an owner, for an owner invitation). An invitation is their act,
    so it lapses with their right to make it — removed, demoted, or their account deleted —
    even if it was not withdrawn when that happened."""
    if invitation.invited_by_id is None:
        return False
    granting = (
        {Membership.Role.OWNER}
        if invitation.role == Membership.Role.OWNER
        else {Membership.Role.OWNER, Membership.Role.ADMIN}
    )
    return (
        Membership.objects.for_organization(invitation.organization_id)
        .filter(user_id=invitation.invited_by_id, role__in=granting)
        .exists()
    )


@transaction.atomic
def invitation_accept(*, invitation: Invitation, user) -> Membership:
    """The invitee (signed in as the invited address) accepts: only now do they become a member."""
    if user.username.lower() != invitation.email:
        raise ValidationFailed("This invitation is for another email address.")
    locked = Invitation.objects.unscoped().select_for_update().get(pk=invitation.pk)
    if not locked.is_open:
        raise Conflict("This invitation was already answered.")
    membership = Membership.objects.for_organization(invitation.organization).filter(
        user=user
    ).first() or membership_create(organization=invitation.organization, user=user, role=invitation.role)
    locked.accepted_at = timezone.now()
    locked.save(update_fields=["accepted_at"])
    return membership


@transaction.atomic
def invitation_accept_new_account(*, invitation: Invitation, password: str, name: str = ""):
    """A new address accepts by choosing its password (the link proved the address is theirs).
    Returns the new user; refused if the address has an account by now (it must sign in)."""
    User = get_user_model()
    user = User.objects.filter(username=invitation.email).first()
    if user is not None and account_is_established(user=user):
        raise Conflict("This address already has an account: sign in to accept.")
    # New, or a sign-up never confirmed: the invitation link proves the address just as well.
    user = user or User(username=invitation.email, email=invitation.email)
    user.is_active = True
    user.set_password(password)
    first, _, last = (name or "").strip().partition(" ")
    user.first_name, user.last_name = first[:150], last[:150]
    user.save()
    invitation_accept(invitation=invitation, user=user)
    return user


@transaction.atomic
def invitation_decline(*, invitation: Invitation) -> None:
    """Nothing about the invitee changes; the inviting organization sees it declined."""
    Invitation.objects.unscoped().filter(
        pk=invitation.pk, accepted_at__isnull=True, declined_at__isnull=True
    ).update(declined_at=timezone.now())


@dataclass(frozen=True)
class MemberCredentialsEnded:
    """What ended, and what an admin chose to keep, when a member left or stopped managing:
    the API keys they made (revoked unless kept) and the invitations they sent (withdrawn).
    The view layer audits each item (`api_key.revoked`, and the member event's `changes`)."""

    revoked_keys: tuple[ApiKey, ...] = ()
    kept_keys: tuple[ApiKey, ...] = ()
    withdrawn_invitations: tuple[Invitation, ...] = ()

    def summary(self) -> dict:
        """For the member event's audit `changes`: client ids and addresses, never secrets;
        only what there was (a promotion's event stays as it was)."""
        summary = {
            "api_keys_revoked": [key.client_id for key in self.revoked_keys],
            "api_keys_kept": [key.client_id for key in self.kept_keys],
            "invitations_withdrawn": [invitation.email for invitation in self.withdrawn_invitations],
        }
        return {name: values for name, values in summary.items() if values}


def _member_credentials_end(*, membership: Membership, keep_api_key_ids) -> MemberCredentialsEnded:
    """Revokes the active keys the member made, except those in `keep_api_key_ids` (which must
    all be theirs: anything else is refused before anything changes), and withdraws the open
    invitations they sent. Call inside the transaction that changes the membership."""
    from organizations.selectors import api_key_list_made_by

    organization = membership.organization
    keys = list(api_key_list_made_by(organization=organization, user=membership.user_id).select_for_update())
    keep = {str(key_id) for key_id in keep_api_key_ids or ()}
    unknown = keep - {str(key.pk) for key in keys}
    if unknown:
        raise ValidationFailed(
            "Only active API keys this member made can be kept.", details={"keep": sorted(unknown)}
        )
    revoked = tuple(key for key in keys if str(key.pk) not in keep)
    now = timezone.now()
    ApiKey.objects.for_organization(organization).filter(pk__in=[key.pk for key in revoked]).update(
        revoked_at=now
    )
    for key in revoked:
        key.revoked_at = now
    return MemberCredentialsEnded(
        revoked_keys=revoked,
        kept_keys=tuple(key for key in keys if str(key.pk) in keep),
        withdrawn_invitations=_invitations_withdraw(membership=membership),
    )


def _invitations_withdraw(*, membership: Membership, role: str | None = None) -> tuple[Invitation, ...]:
    """Deletes the open invitations the member sent (only those for `role`, if given): their
    links stop working. Returns what was withdrawn."""
    from organizations.selectors import invitation_list_sent_by

    invitations = invitation_list_sent_by(organization=membership.organization, user=membership.user_id)
    if role is not None:
        invitations = invitations.filter(role=role)
    invitations = tuple(invitations)
    Invitation.objects.for_organization(membership.organization).filter(
        pk__in=[invitation.pk for invitation in invitations]
    ).delete()
    return invitations


def member_may_manage(role: str) -> bool:
    """Owners and admins make API keys and invite people; agents do neither."""
    return role in {Membership.Role.OWNER, Membership.Role.ADMIN}


@transaction.atomic
def membership_role_change(
    *, membership: Membership, role: str, keep_api_key_ids=()
) -> tuple[Membership, MemberCredentialsEnded]:
    """A new role. A demotion to a role that may not make keys or invite (agent) ends what the
    member made with the old one, as a removal does: their API keys are revoked except those
    in `keep_api_key_ids`, their open invitations withdrawn. An owner made admin loses only the
    owner invitations they sent (an admin may not invite owners)."""
    if role not in Membership.Role.values:
        raise ValidationFailed("Unknown role.")
    # Lock the organization's owner rows so two concurrent demotions cannot leave none.
    list(
        Membership.objects.for_organization(membership.organization)
        .select_for_update()
        .filter(role=Membership.Role.OWNER)
    )
    if (
        membership.role == Membership.Role.OWNER
        and role != Membership.Role.OWNER
        and _owner_count(organization=membership.organization) <= 1
    ):
        raise Conflict("An organization needs at least one owner; make someone else owner first.")
    ended = MemberCredentialsEnded()
    if member_may_manage(membership.role) and not member_may_manage(role):
        ended = _member_credentials_end(membership=membership, keep_api_key_ids=keep_api_key_ids)
    elif membership.role == Membership.Role.OWNER and role != Membership.Role.OWNER:
        # An admin may still invite, but not owners: the owner invitations they sent end.
        ended = MemberCredentialsEnded(
            withdrawn_invitations=_invitations_withdraw(membership=membership, role=Membership.Role.OWNER)
        )
    membership.role = role
    membership.save(update_fields=["role"])
    return membership, ended


@transaction.atomic
def membership_remove(*, membership: Membership, keep_api_key_ids=()) -> MemberCredentialsEnded:
    """The member loses access at once (the dashboard checks membership on every request).
    The API keys they made are revoked except those in `keep_api_key_ids` (an admin's explicit
    choice: a key may run a production integration), and the invitations they sent are
    withdrawn, so nothing they hold or handed out outlives their membership by default."""
    list(
        Membership.objects.for_organization(membership.organization)
        .select_for_update()
        .filter(role=Membership.Role.OWNER)
    )
    if membership.role == Membership.Role.OWNER and _owner_count(organization=membership.organization) <= 1:
        raise Conflict("The last owner cannot be removed.")
    ended = _member_credentials_end(membership=membership, keep_api_key_ids=keep_api_key_ids)
    membership.delete()
    return ended


# --- The daily LLM token budget -------------------------------------------------------------

MAX_TOKEN_BUDGET = 2_147_483_647  # the column is a Postgres integer
BUDGET_ALERT_PERCENTS = (100, 80)  # highest first
# Adds in the database itself (LLMUsageDay's table; a test pins the name).
_USAGE_ADD_SQL = """
    INSERT INTO organizations_llmusageday AS usage
        (id, organization_id, created_at, day, prompt_tokens, completion_tokens, cost, calls, alerted_percent)
    VALUES (%s, %s, %s, %s, %s, %s, %s, 1, 0)
    ON CONFLICT (organization_id, day) DO UPDATE SET
        prompt_tokens = usage.prompt_tokens + EXCLUDED.prompt_tokens,
        completion_tokens = usage.completion_tokens + EXCLUDED.completion_tokens,
        cost = usage.cost + EXCLUDED.cost,
        calls = usage.calls + 1
    RETURNING id, prompt_tokens + completion_tokens, alerted_percent
"""


def llm_daily_token_budget_clean(value) -> int | None:
    """A budget from an operator: a whole number of tokens ≥ 0, or None (unlimited)."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower().replace("_", "")
        if text in {"unlimited", "none"}:
            return None
        value = int(text) if text.isdigit() else value
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKEN_BUDGET:
        raise ValidationFailed(
            "llm_daily_token_budget must be a whole number of tokens from 0 to "
            f"{MAX_TOKEN_BUDGET} (0 = no LLM calls) or 'unlimited'; got {value!r}.",
            details={
                "llm_daily_token_budget": ["Enter a whole number of tokens, 0 or more, or 'unlimited'."]
            },
        )
    return value


def organization_llm_budget_set(*, organization: Organization, budget) -> Organization:
    organization.llm_daily_token_budget = llm_daily_token_budget_clean(budget)
    organization.save(update_fields=["llm_daily_token_budget"])
    return organization


def llm_usage_record(
    *, organization: Organization, prompt_tokens: int, completion_tokens: int, cost: float = 0.0
) -> int:
    """Adds one LLM call to the organization's usage for today (UTC); returns today's total tokens.

    One `INSERT … ON CONFLICT DO UPDATE` adds in the database itself, so any number of
    processes recording at once add up exactly (no read-modify-write). Crossing 80% and
    then 100% of the budget logs one warning each per day: the row remembers the highest
    threshold logged, and only the process whose conditional update flips it logs.
    """
    prompt_tokens = max(0, int(prompt_tokens or 0))
    completion_tokens = max(0, int(completion_tokens or 0))
    cost_decimal = Decimal(str(round(max(0.0, float(cost or 0.0)), 6)))
    with connection.cursor() as cursor:
        cursor.execute(
            _USAGE_ADD_SQL,
            [
                uuid.uuid4(),
                organization.pk,
                timezone.now(),
                utc_today(),
                prompt_tokens,
                completion_tokens,
                cost_decimal,
            ],
        )
        usage_id, total, alerted = cursor.fetchone()
    _llm_budget_alert(organization=organization, usage_id=usage_id, total=total, alerted=alerted)
    return total


def _llm_budget_alert(*, organization: Organization, usage_id, total: int, alerted: int) -> None:
    budget = organization.llm_daily_token_budget
    if not budget:  # unlimited, or 0 (no call can have been made against it)
        return
    crossed = next((percent for percent in BUDGET_ALERT_PERCENTS if total * 100 >= budget * percent), 0)
    if crossed <= alerted:
        return
    flipped = (
        LLMUsageDay.objects.for_organization(organization)
        .filter(pk=usage_id, alerted_percent__lt=crossed)
        .update(alerted_percent=crossed)
    )
    if flipped:
        logger.warning(
            "LLM budget alert: organization %s (%s) has used %s%% of its daily token budget "
            "(%s of %s tokens today, UTC)%s",
            organization.slug,
            organization.pk,
            crossed,
            total,
            budget,
            "; further LLM calls are refused until 00:00 UTC" if crossed >= 100 else "",
        )
        _llm_budget_alert_enqueue(organization=organization, percent=crossed, total=total, budget=budget)


def _llm_budget_alert_enqueue(*, organization: Organization, percent: int, total: int, budget: int) -> None:
    from organizations.tasks import llm_budget_alert_mail_task

    arguments = (str(organization.pk), percent, total, budget)

    def enqueue() -> None:
        try:
            llm_budget_alert_mail_task.delay(*arguments)
        except Exception as error:  # broker down: the warning above is the alert of record
            logger.warning(
                "could not enqueue the budget alert email for organization %s (%s)",
                organization.pk,
                error.__class__.__name__,
            )

    transaction.on_commit(enqueue)


def llm_budget_alert_mail(*, organization_id, percent: int, total: int, budget: int) -> int:
    """Email the organization's owners and admins that today's LLM usage reached `percent`
    of its budget; returns how many people were told."""
    from django.conf import settings
    from django.core.mail import send_mail

    organization = Organization.objects.filter(pk=organization_id).first()
    if organization is None:  # deleted since
        return 0
    recipients = admin_mail_recipients(organization=organization)
    if not recipients:
        return 0
    if percent >= 100:
        consequence = (
            "Until 00:00 UTC chat requests get HTTP 429 and no AI call is made (visitors' messages "
            "are still saved)."
        )
    else:
        consequence = "At 100% chat requests get HTTP 429 and no AI call is made until 00:00 UTC."
    body = (
        f"{organization.name} has used {percent}% of its daily LLM token budget: "
        f"{total:,} of {budget:,} tokens today (UTC).\n\n{consequence}\n\n"
        "The server's administrators change the budget with `manage.py set_llm_budget`; "
        "today's usage is on the dashboard under Settings > Organization.\n"
    )
    send_mail(
        # One line whatever the name holds (a line break in a subject is a header injection).
        subject=f"{' '.join(organization.name.split())}: {percent}% of today's LLM token budget used",
        message=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=recipients,
    )
    return len(recipients)


# --- events ------------------------------------------------------------------------------

EVENT_TYPES = frozenset(
    {
        "conversation.created",
        "message.created",
        "handoff.requested",
        "conversation.resolved",
        "feedback.created",
        "csat.created",
        "source.ready",
        "source.failed",
    }
)
_event_logger = logging.getLogger("supportai.events")


@functools.cache
def _event_subscribers(paths: tuple[str, ...]) -> list:
    return [import_string(path) for path in paths]


def event_emit(*, organization: Organization | uuid.UUID | str, type: str, data: dict) -> Event:  # noqa: A002 (SPEC's field name)
    """Records that something happened: the one door every domain event goes through.

    The row is the durable record (the outbox), written in the caller's transaction, so an
    event is never recorded for a change that rolled back, nor a change without its event.
    Then each of `settings.EVENT_SUBSCRIBERS` is called with it in that same transaction
    (webhooks create their delivery rows there and enqueue them on commit); the roof wires
    them, so this app imports none of its subscribers. `data` must be JSON: ids and small
    facts, never message text or secrets. A log line goes with it.
    """
    event = event_build(organization=organization, type=type, data=data)
    event.save(force_insert=True)
    event_published(event=event)
    return event


def event_build(*, organization: Organization | uuid.UUID | str, type: str, data: dict) -> Event:  # noqa: A002
    """An unsaved, checked event, for a caller that inserts it in its own statement (the hot
    path storing chat messages) and then calls `event_published` in the same transaction."""
    if type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {type!r}")
    organization_id = getattr(organization, "pk", organization)  # an Organization or its id
    return Event(organization_id=organization_id, type=type, data=data)


def event_published(*, event: Event) -> None:
    """The saved event goes to its subscribers, in the caller's (still open) transaction."""
    for subscriber in _event_subscribers(tuple(settings.EVENT_SUBSCRIBERS)):
        subscriber(event=event)
    _event_log(event)


def _event_log(event: Event) -> None:
    _event_logger.info(
        "event %s",
        event.type,
        extra={"event_id": str(event.pk), "organization_id": str(event.organization_id)},
    )


@dataclass(frozen=True)
class EventWrite:
    """A subscriber's rows for one event as a single data-modifying statement (`INSERT …
    RETURNING` one column), and what to do with the returned values once it ran (in the
    same transaction). A subscriber offers it as `subscriber.statement(event=…)` (None: no
    rows for this event), so the hot path writing an event can run it in its own statement."""

    sql: str
    params: list
    done: Callable[[list], object]


@dataclass(frozen=True)
class EventFold:
    """The subscribers of an unsaved event, for a writer that inserts the event in its own
    statement: `ctes` (name, SQL, params) go into that statement's WITH, `returning` into its
    RETURNING (one array per write, in order); `published(arrays)` then finishes the
    publication. `needs_transaction`: a subscriber without a statement runs its own after the
    insert, so the caller must hold a transaction around both."""

    event: Event
    ctes: list[tuple[str, str, list]]
    returning: list[str]
    needs_transaction: bool
    _writes: tuple[EventWrite, ...]
    _others: tuple

    def published(self, arrays) -> None:
        for write, values in zip(self._writes, arrays, strict=True):
            write.done(list(values))
        for subscriber in self._others:
            subscriber(event=self.event)
        _event_log(self.event)


def event_fold(*, event: Event) -> EventFold:
    """`event_published`, split for a statement that inserts `event` and its subscribers'
    rows at once (a stored chat message: one statement and no transaction instead of four)."""
    writes, others = [], []
    for subscriber in _event_subscribers(tuple(settings.EVENT_SUBSCRIBERS)):
        statement = getattr(subscriber, "statement", None)
        if statement is None:
            others.append(subscriber)
            continue
        write = statement(event=event)
        if write is not None:
            writes.append(write)
    names = [f"event_write_{index}" for index in range(len(writes))]
    return EventFold(
        event=event,
        ctes=[(name, write.sql, write.params) for name, write in zip(names, writes, strict=True)],
        returning=[f"ARRAY(SELECT * FROM {name})" for name in names],  # noqa: S608 (our own CTE names)
        needs_transaction=bool(others),
        _writes=tuple(writes),
        _others=tuple(others),
    )


def membership_notifications_set(*, membership: Membership, handoff_email: bool) -> Membership:
    """A member's own choice: an email when a visitor waits for a person."""
    membership.notify_handoff_email = bool(handoff_email)
    membership.save(update_fields=["notify_handoff_email"])
    return membership


# --- business hours --------------------------------------------------------------------------

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME_RANGE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)\s*-\s*([01]\d|2[0-3]|24):([0-5]\d)$")


def business_hours_parse(*, text: str) -> list[list[str]]:
    """'09:00-12:00, 13:00-17:30' → [["09:00", "12:00"], ["13:00", "17:30"]] (ValueError if not)."""
    ranges = []
    for part in [piece.strip() for piece in (text or "").split(",") if piece.strip()]:
        match = _TIME_RANGE.match(part)
        if not match:
            raise ValueError(f"{part!r} is not a range like 09:00-17:00")
        start, end = f"{match[1]}:{match[2]}", f"{match[3]}:{match[4]}"
        if match[3] == "24" and match[4] != "00":
            raise ValueError(f"{part!r}: a day ends at 24:00")
        if end <= start:
            raise ValueError(f"{part!r} ends before it starts")
        ranges.append([start, end])
    if len(ranges) > 4:
        raise ValueError("at most 4 ranges a day")
    return ranges


def business_hours_set(
    *, organization: Organization, timezone_name: str, hours: dict, holidays: list
) -> Organization:
    """The organization's opening hours (owners and admins; the view checks the role)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    errors = {}
    try:
        ZoneInfo(timezone_name)
    except (ZoneInfoNotFoundError, ValueError):
        errors["timezone"] = ["Unknown time zone (use a name such as Europe/Paris)."]
    cleaned_hours = {}
    for day, ranges in (hours or {}).items():
        if day not in WEEKDAYS:
            errors[day] = ["Unknown weekday."]
        elif ranges:
            cleaned_hours[day] = ranges
    cleaned_holidays = []
    for value in holidays or []:
        try:
            cleaned_holidays.append(dt.date.fromisoformat(str(value).strip()).isoformat())
        except ValueError:
            errors["holidays"] = [f"{value!r} is not a date like 2026-12-25."]
    if len(cleaned_holidays) > 100:
        errors["holidays"] = ["At most 100 holidays."]
    if errors:
        raise ValidationFailed("The business hours are not valid.", details=errors)
    organization.business_timezone = timezone_name
    organization.business_hours = cleaned_hours
    organization.business_holidays = sorted(set(cleaned_holidays))
    organization.save(update_fields=["business_timezone", "business_hours", "business_holidays"])
    return organization
