"""Herald settings, read from the environment (and an optional `.env`) through django-environ.

Every variable is listed with a safe development default in `.env.example`. Without
`DATABASE_URL` and `REDIS_URL` Herald runs on an embedded default: SQLite and kombu's
filesystem transport, so `make run` needs no servers.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
_INSECURE_DEV_KEY = "insecure-development-key-do-not-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default=_INSECURE_DEV_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off (see .env.example).")
# Keys anyone can read (.env.example, this file, Django's template) sign nobody's sessions.
_KNOWN_KEYS = {_INSECURE_DEV_KEY, "change-me-to-a-long-random-string"}
if not DEBUG and (
    SECRET_KEY in _KNOWN_KEYS or len(SECRET_KEY) < 32 or SECRET_KEY.startswith("django-insecure")
):
    raise ImproperlyConfigured(
        "SECRET_KEY is a published placeholder or shorter than 32 characters; with DEBUG off "
        "Herald needs a secret one. Generate it with: "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# The public address of this Herald, used in OAuth callbacks and signed media URLs.
PUBLIC_URL = env.str("PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "accounts",
    "scheduler",
    "csp",
    "axes",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "scheduler.activity.ActorMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "accounts.middleware.UserTimezoneMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",  # last, as django-axes asks
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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
                "accounts.context_processors.workspace",
                "scheduler.context_processors.networks",
                "scheduler.context_processors.team",
            ],
        },
    },
]

# An empty DATABASE_URL (as in .env.example) means the embedded default.
DATABASE_URL = env.str("DATABASE_URL", default="") or f"sqlite:///{VAR_DIR / 'herald.sqlite3'}"
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
# Persistent connections: a worker thread reuses its connection instead of opening one per task
# (connections stay bounded by web threads + worker concurrency; keep that under max_connections).
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share one file: wait for the write lock instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# django-axes counts failed logins (the login page, the admin, anything that authenticates) and
# refuses a username from the same address after HERALD_LOGIN_FAILURE_LIMIT failures, for
# HERALD_LOGIN_COOLOFF_MINUTES, even with the right password. The address is REMOTE_ADDR: behind a
# proxy every client shares it, which makes the lock per username.
AUTHENTICATION_BACKENDS = [
    "accounts.backends.LoginThrottleBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("HERALD_LOGIN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("HERALD_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_USERNAME_FORM_FIELD = "username"  # the login forms post the email as "username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "scheduler:dashboard"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(VAR_DIR / "media"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MAX_UPLOAD_BYTES = env.int("MAX_UPLOAD_BYTES", default=200 * 1024 * 1024)
# Images with more pixels are refused at upload: decoding one takes about 4 bytes a pixel.
HERALD_MAX_IMAGE_PIXELS = env.int("HERALD_MAX_IMAGE_PIXELS", default=50_000_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024

# --- Redis: broker and cache -------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# --- Celery ---------------------------------------------------------------------------------------
# Redis re-delivers a task that is not acknowledged within the visibility timeout; every task
# time limit stays well below it so a long publish is never handed to a second worker.
CELERY_BROKER_VISIBILITY_TIMEOUT = env.int("CELERY_BROKER_VISIBILITY_TIMEOUT", default=3600)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=900)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 60
if CELERY_TASK_TIME_LIMIT >= CELERY_BROKER_VISIBILITY_TIMEOUT:
    raise ImproperlyConfigured(
        "CELERY_TASK_TIME_LIMIT must stay below the broker visibility timeout."
    )

if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_BROKER_VISIBILITY_TIMEOUT}
else:
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "store_processed": False,
        # The fan-out exchanges' table (kombu's default is ./control, in the working directory).
        "control_folder": str(_broker_dir / "control"),
    }
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
CELERY_TASK_IGNORE_RESULT = True
# Celery's Django fixup closes every database connection before and after each task unless
# this is set; reconnecting per publish costs more than the publish. Connections are closed
# after this many tasks, and Django's CONN_MAX_AGE / health checks still apply.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_TASK_ACKS_LATE = False  # a publish is never re-run by the broker; the engine recovers it
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
CELERY_TASK_DEFAULT_QUEUE = "herald"
CELERY_TASK_ROUTES = {"scheduler.tasks.dispatch_tick": {"queue": "herald-dispatch"}}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# --- Publishing engine ----------------------------------------------------------------------------
HERALD_DISPATCH_INTERVAL = env.float("HERALD_DISPATCH_INTERVAL", default=2.0)  # seconds
# Deliveries due within this many seconds are claimed now and published with an ETA, so a post
# goes out on its second rather than at the next tick.
HERALD_CLAIM_AHEAD = env.float("HERALD_CLAIM_AHEAD", default=HERALD_DISPATCH_INTERVAL * 2 + 1)
HERALD_CLAIM_BATCH = env.int("HERALD_CLAIM_BATCH", default=2000)
# Deliveries due in the same second go to a worker as one task of up to this many; a worker
# process sends them on its HERALD_PUBLISH_THREADS publishing threads, all of its tasks sharing
# them (scheduler/publishing.py).
HERALD_PUBLISH_BATCH = env.int("HERALD_PUBLISH_BATCH", default=20)
HERALD_PUBLISH_THREADS = env.int("HERALD_PUBLISH_THREADS", default=32)
# A worker renews the lease of each claim it holds every few seconds (scheduler/leases.py), so a
# dead worker's claims are taken over this many seconds after it stopped.
HERALD_LEASE_SECONDS = env.int("HERALD_LEASE_SECONDS", default=30)
# A claim whose task no worker has received this many seconds after its due time (the broker lost
# it) is enqueued again.
HERALD_START_GRACE = env.float("HERALD_START_GRACE", default=10.0)
# /healthz reports deliveries overdue by this many seconds that nobody is working on.
HERALD_STUCK_AFTER = env.float("HERALD_STUCK_AFTER", default=60.0)
HERALD_CATCH_UP_WINDOW = timedelta(hours=env.float("HERALD_CATCH_UP_WINDOW_HOURS", default=6))
HERALD_MAX_ATTEMPTS = env.int("HERALD_MAX_ATTEMPTS", default=9)
# Seconds before the first retry of a transient error, doubled with each one in a row (5, 10,
# 20 ... 640 s): most errors are brief, so the first retries come soon, and 9 tries still ride
# out about 20 minutes of an outage. A network's Retry-After wins.
HERALD_BACKOFF_BASE = env.float("HERALD_BACKOFF_BASE", default=5.0)
HERALD_BACKOFF_MAX = env.float("HERALD_BACKOFF_MAX", default=3600.0)
HERALD_MEDIA_PROCESSING_TIMEOUT = env.float("HERALD_MEDIA_PROCESSING_TIMEOUT", default=600.0)
HERALD_NETWORK_TIMEOUT = env.float("HERALD_NETWORK_TIMEOUT", default=30.0)
HERALD_UPLOAD_TIMEOUT = env.float("HERALD_UPLOAD_TIMEOUT", default=300.0)
HERALD_LIMITS_CACHE_SECONDS = env.int("HERALD_LIMITS_CACHE_SECONDS", default=24 * 3600)
# Server URLs given by users may not point at private or loopback addresses, except these
# host[:port] entries (self-hosters on a LAN, and the test suite's fake servers).
HERALD_ALLOWED_PRIVATE_HOSTS = env.list("HERALD_ALLOWED_PRIVATE_HOSTS", default=[])
# Answers from servers a user can point Herald at (scheduler/outbound.py) are cut off past this.
HERALD_OUTBOUND_MAX_BYTES = env.int("HERALD_OUTBOUND_MAX_BYTES", default=10_000_000)

# Credentials are encrypted with the first key; older keys still decrypt (rotation).
HERALD_ENCRYPTION_KEYS = env.list("HERALD_ENCRYPTION_KEYS", default=[])
if not HERALD_ENCRYPTION_KEYS and not DEBUG:
    raise ImproperlyConfigured(
        "HERALD_ENCRYPTION_KEYS must be set when DEBUG is off. Generate one with: "
        "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
    )

# --- Networks -------------------------------------------------------------------------------------
MASTODON_CLIENT_NAME = env.str("MASTODON_CLIENT_NAME", default="Herald")
# read:statuses lets Herald find a status after the 1-hour idempotency window
# (https://docs.joinmastodon.org/methods/statuses/#create).
MASTODON_SCOPES = ["read:accounts", "read:statuses", "write:statuses", "write:media"]

# --- Bluesky (atproto; https://docs.bsky.app/) ----------------------------------------------------
# Where sign-ins go when the account's PDS cannot be resolved from its DID (and for emails):
# bsky.social is the entryway for Bluesky-hosted accounts. The PLC directory resolves did:plc.
BLUESKY_DEFAULT_PDS = env.str("BLUESKY_DEFAULT_PDS", default="https://bsky.social").rstrip("/")
BLUESKY_PLC_URL = env.str("BLUESKY_PLC_URL", default="https://plc.directory").rstrip("/")
# Links to published posts and profiles point at this web app.
BLUESKY_WEB_URL = env.str("BLUESKY_WEB_URL", default="https://bsky.app").rstrip("/")
# Link cards: the Open Graph fetch of a page linked in a post (through scheduler/outbound.py).
HERALD_LINK_CARD_TIMEOUT = env.float("HERALD_LINK_CARD_TIMEOUT", default=10.0)
HERALD_LINK_CARD_MAX_BYTES = env.int("HERALD_LINK_CARD_MAX_BYTES", default=1_000_000)
HERALD_LINK_CARD_IMAGE_MAX_BYTES = env.int("HERALD_LINK_CARD_IMAGE_MAX_BYTES", default=10_000_000)

# --- Threads (Meta Threads Graph API; https://developers.facebook.com/docs/threads/) --------------
# The *Threads* app id and secret of a Meta app with the Threads use case; the redirect URI must
# be listed in the app exactly as here.
THREADS_APP_ID = env.str("THREADS_APP_ID", default="")
THREADS_APP_SECRET = env.str("THREADS_APP_SECRET", default="")
THREADS_REDIRECT_URI = (
    env.str("THREADS_REDIRECT_URI", default="") or f"{PUBLIC_URL}/channels/threads/callback/"
)
THREADS_GRAPH_URL = env.str("THREADS_GRAPH_URL", default="https://graph.threads.net").rstrip("/")
THREADS_AUTHORIZE_URL = env.str(
    "THREADS_AUTHORIZE_URL", default="https://threads.net/oauth/authorize"
)
THREADS_API_VERSION = env.str("THREADS_API_VERSION", default="v1.0")
# threads_read_replies: reading /{user}/replies, to reconcile replies and count the budget.
THREADS_SCOPES = [
    "threads_basic",
    "threads_content_publish",
    "threads_manage_replies",
    "threads_read_replies",
]
# Long-lived tokens last 60 days and can be refreshed once 24 h old: refresh when this few
# days remain; the job runs every THREADS_REFRESH_INTERVAL seconds, so a failure is retried.
THREADS_REFRESH_MARGIN_DAYS = env.int("THREADS_REFRESH_MARGIN_DAYS", default=10)
THREADS_REFRESH_INTERVAL = env.float("THREADS_REFRESH_INTERVAL", default=3600)
# Bounded wait for containers to finish processing, per part (Meta suggests ~30 s, at most 5 min).
THREADS_CONTAINER_WAIT = env.float("THREADS_CONTAINER_WAIT", default=180.0)
THREADS_POLL_INTERVAL = env.float("THREADS_POLL_INTERVAL", default=3.0)
# The publish right after FINISHED sometimes answers 24/4279009 "Media Not Found"
# (https://developers.facebook.com/docs/threads/troubleshooting).
THREADS_PUBLISH_RETRIES = env.int("THREADS_PUBLISH_RETRIES", default=3)
THREADS_PUBLISH_RETRY_DELAY = env.float("THREADS_PUBLISH_RETRY_DELAY", default=3.0)
# Throttling codes carry no reset time: wait this long before trying again.
THREADS_THROTTLE_RETRY = env.float("THREADS_THROTTLE_RETRY", default=900.0)
# Signed public media URLs (scheduler/public_media.py), fetched by Threads: valid this long.
HERALD_PUBLIC_MEDIA_MAX_AGE = env.int("HERALD_PUBLIC_MEDIA_MAX_AGE", default=48 * 3600)

CELERY_BEAT_SCHEDULE = {
    "dispatch-tick": {
        "task": "scheduler.tasks.dispatch_tick",
        "schedule": HERALD_DISPATCH_INTERVAL,
        "options": {"expires": HERALD_DISPATCH_INTERVAL * 2},
    },
    "verify-channels": {
        "task": "scheduler.tasks.verify_channels",
        "schedule": env.float("HERALD_VERIFY_INTERVAL", default=6 * 3600),
    },
    "refresh-credentials": {
        "task": "scheduler.tasks.refresh_credentials",
        "schedule": THREADS_REFRESH_INTERVAL,
    },
}

# --- REST API (/api/v1/) and webhooks -------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["scheduler.api.authentication.BearerTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["scheduler.api.permissions.TokenScopePermission"],
    "DEFAULT_THROTTLE_CLASSES": ["scheduler.api.throttling.TokenRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "scheduler.api.pagination.Cursor",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["scheduler.api.parsers.JSONParser"],  # uploads: multipart
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "scheduler.api.errors.exception_handler",
    "PAGE_SIZE": 50,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Herald API",
    "DESCRIPTION": (
        "Schedule posts to Mastodon, Bluesky and Threads. Authenticate with a personal access "
        "token: `Authorization: Bearer <token>`. Every POST accepts an `Idempotency-Key` header."
    ),
    "VERSION": "1.0.0",
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_AUTHENTICATION": [],
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "scheduler.api.schema.declare_text_or_parts",
    ],
    "ENUM_NAME_OVERRIDES": {
        "DeliveryStatusEnum": "scheduler.models.DeliveryStatus",
        "PostStatusEnum": "scheduler.models.PostStatus",
        "ChannelStatusEnum": "scheduler.models.ChannelStatus",
        "WebhookEventEnum": "scheduler.models.WebhookEvent",
    },
}
# Requests per token per minute; over it the API answers 429 with Retry-After.
HERALD_API_RATE_LIMIT = env.int("HERALD_API_RATE_LIMIT", default=300)
# Idempotency-Key records are kept this long (at least 24 hours), then purged hourly.
HERALD_IDEMPOTENCY_TTL_HOURS = env.int("HERALD_IDEMPOTENCY_TTL_HOURS", default=48)
# How long a duplicate request waits for the first one with the same key before answering 409.
HERALD_IDEMPOTENCY_WAIT = env.float("HERALD_IDEMPOTENCY_WAIT", default=5.0)
HERALD_WEBHOOK_TIMEOUT = env.float("HERALD_WEBHOOK_TIMEOUT", default=10.0)
HERALD_WEBHOOK_MAX_ATTEMPTS = env.int("HERALD_WEBHOOK_MAX_ATTEMPTS", default=8)
HERALD_WEBHOOK_BACKOFF_BASE = env.float("HERALD_WEBHOOK_BACKOFF_BASE", default=30.0)  # doubled
HERALD_WEBHOOK_BACKOFF_MAX = env.float("HERALD_WEBHOOK_BACKOFF_MAX", default=6 * 3600.0)
CELERY_BEAT_SCHEDULE.update(
    {
        "send-due-webhooks": {"task": "scheduler.tasks.send_due_webhooks", "schedule": 30.0},
        "purge-idempotency-records": {
            "task": "scheduler.tasks.purge_idempotency_records",
            "schedule": 3600.0,
        },
        "delete-unused-uploads": {
            "task": "scheduler.tasks.delete_unused_uploads",
            "schedule": 3600.0,
        },
    }
)
# Files uploaded in the composer but used by no post are deleted after this many hours.
HERALD_UNUSED_MEDIA_HOURS = env.float("HERALD_UNUSED_MEDIA_HOURS", default=24)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    # One line per task every tick drowns what matters; engine events are logged by Herald.
    "loggers": {
        name: {"level": "WARNING"}
        for name in ("celery.app.trace", "celery.worker.strategy", "celery.beat")
    },
}

if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE

# --- HTTPS and browser hardening --------------------------------------------------------------------
# HSTS is only sent on HTTPS responses, so a year by default costs a plain-HTTP LAN install nothing.
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
# Behind a TLS-terminating proxy: the header (and value) it sets, e.g. HTTP_X_FORWARDED_PROTO,https.
# Only set it when the proxy always overwrites that header, or clients can claim HTTPS.
_PROXY_SSL_HEADER = env.list("SECURE_PROXY_SSL_HEADER", default=[])
if _PROXY_SSL_HEADER:
    if len(_PROXY_SSL_HEADER) != 2:
        raise ImproperlyConfigured(
            "SECURE_PROXY_SSL_HEADER is a header and a value, e.g. HTTP_X_FORWARDED_PROTO,https."
        )
    SECURE_PROXY_SSL_HEADER = (_PROXY_SSL_HEADER[0], _PROXY_SSL_HEADER[1])
# Content-Security-Policy (django-csp): scripts and styles only from this site's files, no inline
# <script>, no on* attributes, no style="" attributes; images may come from networks (avatars).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "https:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- Email (invitations, password resets, notifications) -----------------------------------------
# One URL: consolemail:// prints emails (development), smtp://user:pass@host:25,
# smtp+tls://...:587 or smtp+ssl://...:465 send them.
EMAIL_URL = env.str("EMAIL_URL", default="consolemail://")
vars().update(
    {key: value for key, value in env.email_url_config(EMAIL_URL).items() if value is not None}
)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Herald <herald@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
# Invitation links stop working after this many days; anyone may sign up only when this is on.
HERALD_INVITATION_DAYS = env.int("HERALD_INVITATION_DAYS", default=7)
HERALD_SIGNUP_OPEN = env.bool("HERALD_SIGNUP_OPEN", default=False)
PASSWORD_RESET_TIMEOUT = env.int("PASSWORD_RESET_TIMEOUT", default=3 * 3600)
# Password reset emails per address and per client IP, each per hour.
PASSWORD_RESET_LIMIT = env.int("PASSWORD_RESET_LIMIT", default=5)
