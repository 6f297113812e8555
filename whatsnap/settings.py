"""WhatSnap settings. Everything that differs between machines comes from the environment
(see README "Configuration"); the defaults run the embedded mode: SQLite, in-process channel
layer relayed through the database, django-q2 on the ORM broker."""
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from whatsnap.env import env_bool, env_float, env_int, env_list, env_str
from whatsnap.upload_settings import upload_settings

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("WHATSNAP_VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "insecure-dev-only-key-set-SECRET_KEY-in-production"

# Keys for secrets at rest (Fernet). Comma-separated: the first encrypts, all decrypt, so a
# key can be rotated without losing old values.
ENCRYPTION_KEYS = env_list("ENCRYPTION_KEY")
if not ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured("ENCRYPTION_KEY must be set when DEBUG is off")
    ENCRYPTION_KEYS = ["dev-only-" + SECRET_KEY]

PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL", "http://127.0.0.1:8000").rstrip("/")
_public = urlparse(PUBLIC_BASE_URL)
if _public.scheme not in ("http", "https") or not _public.hostname:
    raise ImproperlyConfigured(f"PUBLIC_BASE_URL must be an http(s) URL, got {PUBLIC_BASE_URL!r}")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost") + [_public.hostname]
CSRF_TRUSTED_ORIGINS = [f"{_public.scheme}://{_public.netloc}"] + env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "whatsnap.apps.AdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our own static files, never a CDN
    "channels",
    "django_q",
    "django_htmx",
    "axes",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "django_otp.plugins.otp_static",
    "whatsnap",
    "accounts",
    "contacts",
    "routing",
    "conversations",
    "broadcasts",
    "ghl",
    "hooks",
]

MIDDLEWARE = [
    "whatsnap.logs.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "accounts.tenancy.CurrentLocationMiddleware",
    "whatsnap.two_factor.TwoFactorMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout flagged by the backend into the 429 page
]

ROOT_URLCONF = "whatsnap.urls"
# Threads per web process running requests (views are sync); 0 = Django's thread per request.
WEB_THREADS = env_int("WEB_THREADS", 8)
ASGI_APPLICATION = "whatsnap.asgi.application"

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
                "accounts.context_processors.tenancy",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'whatsnap.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The reports' covering index (INCLUDE columns) is a PostgreSQL feature; SQLite builds the
    # index without them, which is all the embedded default needs: no warning at every start.
    SILENCED_SYSTEM_CHECKS = ["models.W040"]
# qcluster forks its worker processes: a pool's sockets must never cross a fork, and a
# worker process is one thread anyway, so workers keep one plain persistent connection.
_FORKING_WORKER = sys.argv[1:2] == ["qcluster"]
if _FORKING_WORKER:
    DATABASES["default"]["CONN_MAX_AGE"] = env_int("DB_CONN_MAX_AGE", 60)
if (DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env_int("DB_POOL_MAX_SIZE", 10) > 0
        and not _FORKING_WORKER):
    # A psycopg connection pool per web process. Under ASGI every request runs in a fresh
    # thread, so persistent per-thread connections (CONN_MAX_AGE) would pile up instead.
    # Its health check skips connections handed back under a second ago (whatsnap/postgresql).
    DATABASES["default"].update(ENGINE="whatsnap.postgresql", CONN_MAX_AGE=0, CONN_HEALTH_CHECKS=False, OPTIONS={
        "pool": {"min_size": 1, "max_size": env_int("DB_POOL_MAX_SIZE", 10), "timeout": 20, "max_idle": 300}})
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL + a busy timeout let the web and worker processes share the file.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# --- Login security: lockout (django-axes) and two-factor (django-otp) ---------------------
AUTHENTICATION_BACKENDS = [
    "whatsnap.login.LockoutBackend",  # refuses a locked-out username+address before the password is checked
    "django.contrib.auth.backends.ModelBackend",
]
# Failures are counted per username *and* client address together: a stranger guessing a
# password locks out only themselves, never the real user at their own address.
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("AXES_COOLOFF_MINUTES", 15))
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "whatsnap.login.client_ip"
# Proxies in front of the web processes that append the client's address to
# X-Forwarded-For; 0 = the connection's own address is the client's.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
if TRUSTED_PROXY_COUNT < 0:
    raise ImproperlyConfigured("TRUSTED_PROXY_COUNT must be 0 or more")
OTP_TOTP_ISSUER = "WhatSnap"
# A half-finished login (password right, code not yet typed) is forgotten after this long.
LOGIN_CODE_STEP_SECONDS = 300
# Invitations to join a location: valid this long; e-mailed only when an SMTP server is set
# (otherwise the admin passes the link on; it is never written to the server log).
INVITATION_VALID_DAYS = env_int("INVITATION_VALID_DAYS", 7)
EMAIL_HOST = env_str("EMAIL_HOST")
INVITATION_EMAILS = bool(EMAIL_HOST)
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("EMAIL_PORT", 587)
    EMAIL_HOST_USER = env_str("EMAIL_HOST_USER")
    EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD")
    EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", True)
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "WhatSnap <noreply@localhost>")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Attachments chosen in the composer: file system under the var dir, or S3 (whatsnap/upload_settings.py)
MEDIA_ROOT, STORAGES["default"], UPLOAD_MAX_BYTES, UPLOAD_LINK_MAX_AGE_SECONDS, UPLOAD_UNSENT_RETENTION_HOURS = upload_settings(VAR_DIR)
MEDIA_URL = "/uploads-are-served-by-views/"  # never served from here (conversations/upload_views.py)
WHITENOISE_USE_FINDERS = DEBUG  # otherwise `collectstatic` (bin/run does it)

# --- Redis: channel layer + task broker when set; embedded alternatives otherwise ---------
REDIS_URL = env_str("REDIS_URL")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # A socket's receive blocks in BZPOPMIN for channels_redis's brpop_timeout (5 s);
            # redis-py 8's default read timeout is also 5 s, so a reply a moment late (a busy
            # machine) raised TimeoutError in the consumer and dropped the open page's socket.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
# In embedded mode live events cross process boundaries through the database (whatsnap/live.py).
LIVE_EVENTS_VIA_DATABASE = not REDIS_URL

Q_CLUSTER = {
    "name": "whatsnap",
    "workers": env_int("Q_WORKERS", 2),
    "timeout": 60,
    "retry": 90,  # must exceed timeout
    "max_attempts": 5,
    "ack_failures": True,
    # -1: successful task results are not stored (failures are). With a positive limit
    # django-q2 locks every stored success row on each task to prune them, which serialises
    # all workers of all clusters on that table.
    "save_limit": -1,
    "catch_up": False,
    "orm": "default",
    "poll": 0.2,
    "sync": env_bool("Q_SYNC", False),
}
if REDIS_URL:
    Q_CLUSTER.pop("orm")
    Q_CLUSTER["redis"] = REDIS_URL
# Per qcluster worker process: a waker (whatsnap/waker.py) fires run_now_or_at's one-off schedules
# on time, sleeping at most this long (0: django-q2's ~30 s scheduler); a claim loop
# (whatsnap/listener.py) files stored inbound events, INGEST_BATCH_SIZE a transaction.
WHATSNAP_WAKE_INTERVAL_SECONDS = env_float("WHATSNAP_WAKE_INTERVAL_SECONDS", 0.5)
INGEST_BATCH_SIZE = max(1, env_int("INGEST_BATCH_SIZE", 100))
_NOTIFIED = bool(REDIS_URL) or "postgresql" in DATABASES["default"]["ENGINE"]  # else the loops only poll
WHATSNAP_CLAIM_POLL_SECONDS = env_float("WHATSNAP_CLAIM_POLL_SECONDS", 2.0 if _NOTIFIED else 0.25)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.api_auth.LocationTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.api_auth.HasLocationToken"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "whatsnap.api_policies.DefaultCursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "whatsnap.api_base.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": ["whatsnap.api_policies.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"token": env_str("API_RATE_LIMIT", "600/min")},
}
SPECTACULAR_SETTINGS = {
    "TITLE": "WhatSnap API",
    "DESCRIPTION": "Accounts, contacts, conversations and messages of one WhatSnap location.",
    "VERSION": "1.0.0",
    "COMPONENT_SPLIT_REQUEST": True,
    "SERVE_INCLUDE_SCHEMA": False,
    # /api/v1/docs/ loads Swagger UI from our static files (drf-spectacular-sidecar): it works offline
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {"CustomFieldKindEnum": "contacts.models.CustomField.Kind", "ContactKindEnum": "contacts.models.Contact.Kind"},
}

# Stored events / queued sends with no result after this long are queued again by the minute sweep.
RETRY_PENDING_AFTER_SECONDS = env_int("RETRY_PENDING_AFTER_SECONDS", 30)
CONTACT_IMPORT_MAX_BYTES = env_int("CONTACT_IMPORT_MAX_BYTES", 20 * 1024 * 1024)  # the largest contacts CSV an import takes
# Broadcasts (issue 18): messages of one broadcast kept in an account's send queue at once (a
# reply typed meanwhile waits behind at most these); the failure rate of its last sends that
# pauses it; the first day's cap of a new number's warm-up (it doubles each day).
BROADCAST_QUEUE_WINDOW = env_int("BROADCAST_QUEUE_WINDOW", 3)
BROADCAST_FAILURE_RATE = env_float("BROADCAST_FAILURE_RATE", 0.2)
BROADCAST_FAILURE_SAMPLE = env_int("BROADCAST_FAILURE_SAMPLE", 20)
BROADCAST_WARMUP_FIRST_DAY = env_int("BROADCAST_WARMUP_FIRST_DAY", 50)
# Webhooks kept unfiled (with their reason, for an admin to re-run) are deleted after this many
# days (0 = kept until re-run or deleted by hand).
UNFILED_EVENT_RETENTION_DAYS = env_int("UNFILED_EVENT_RETENTION_DAYS", 30)
# At most this many messages of a gateway's history are imported when an account connects
# (the newest ones; the rest of the period is left on the phone).
HISTORY_IMPORT_MAX_MESSAGES = env_int("HISTORY_IMPORT_MAX_MESSAGES", 2000)
if UNFILED_EVENT_RETENTION_DAYS < 0:
    raise ImproperlyConfigured("UNFILED_EVENT_RETENTION_DAYS must be 0 (keep) or more")
if HISTORY_IMPORT_MAX_MESSAGES < 1:
    raise ImproperlyConfigured("HISTORY_IMPORT_MAX_MESSAGES must be 1 or more (history_days 0 on an account imports none)")
# Addresses users give are called at public addresses only (whatsnap/guarded_fetch.py) unless
# the operator allows loopback / private / link-local ones for that purpose:
WEBHOOKS_ALLOW_PRIVATE_URLS = env_bool("WEBHOOKS_ALLOW_PRIVATE_URLS", False)  # outgoing webhook receivers
GATEWAY_ALLOW_PRIVATE_URLS = env_bool("GATEWAY_ALLOW_PRIVATE_URLS", False)  # an Android phone / Mac on the shop's LAN
MEDIA_ALLOW_PRIVATE_URLS = env_bool("MEDIA_ALLOW_PRIVATE_URLS", False)  # attachment URLs (fetched, or handed to a gateway)

# Webhook bodies above this size are refused with 413 before parsing.
WEBHOOK_MAX_BYTES = env_int("WEBHOOK_MAX_BYTES", 256 * 1024)
# WhatsApp gateways post media inline as base64: a photo or voice note is megabytes.
WHATSAPP_WEBHOOK_MAX_BYTES = env_int("WHATSAPP_WEBHOOK_MAX_BYTES", 24 * 1024 * 1024)
# SMS Gateway for Android posts a picture message (MMS) with its attachments inline (base64).
SMS_GATEWAY_WEBHOOK_MAX_BYTES = env_int("SMS_GATEWAY_WEBHOOK_MAX_BYTES", 8 * 1024 * 1024)
# Pages/forms: Django's 2.5 MB; webhook endpoints read bodies with their own (whatsnap/request_body.py).

# --- Outside services (base URLs are settings so loopback stand-ins can be used) ----------
TWILIO_API_BASE_URL = env_str("TWILIO_API_BASE_URL")  # empty = Twilio itself
TWILIO_MESSAGING_BASE_URL = env_str("TWILIO_MESSAGING_BASE_URL")  # empty = Twilio itself (messaging.twilio.com)

# --- HTTPS and headers (production: PUBLIC_BASE_URL is https) ---------------------------
_HTTPS = _public.scheme == "https"
SESSION_COOKIE_SECURE = _HTTPS
CSRF_COOKIE_SECURE = _HTTPS
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = _HTTPS and env_bool("SECURE_SSL_REDIRECT", True)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^livez$"]  # probes talk plain HTTP to the process
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if _HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _HTTPS
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- WhatSnap inside GoHighLevel (a custom page in GHL's frame; ghl/embed.py) ----------------
# The marketplace app's Shared Secret: it decrypts the user data GHL hands the custom page.
# Empty = signing in from inside GHL is off.
GHL_SHARED_SECRET = env_str("GHL_SHARED_SECRET")
# Origins allowed to show WhatSnap in a frame (space-separated); white-label agencies add their
# app domain. Empty = no one (X-Frame-Options: DENY).
GHL_EMBED_ORIGINS = env_str("GHL_EMBED_ORIGINS", "https://app.gohighlevel.com https://app.leadconnectorhq.com").split()
for _origin in GHL_EMBED_ORIGINS:
    _parsed = urlparse(_origin)
    if _parsed.scheme not in ("http", "https") or not _parsed.hostname or _origin != f"{_parsed.scheme}://{_parsed.netloc}":
        raise ImproperlyConfigured(f"GHL_EMBED_ORIGINS holds origins like https://app.example.com (no path), got {_origin!r}")
MIDDLEWARE.insert(MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1, "whatsnap.framing.FramingMiddleware")
# In GHL's frame WhatSnap is a third-party site: its cookies must be SameSite=None (Secure,
# so https only) and are Partitioned (CHIPS, whatsnap/framing.py). CSRF tokens stay enforced.
EMBED_COOKIES_PARTITIONED = _HTTPS and bool(GHL_EMBED_ORIGINS)
if EMBED_COOKIES_PARTITIONED:
    SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "None"

LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, got {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_id": {"()": "whatsnap.logs.RequestIdFilter"}, "redact": {"()": "whatsnap.logs.RedactSecretsFilter"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"},
        "json": {"()": "whatsnap.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id", "redact"]}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # httpx logs every request URL at INFO (phone numbers in query strings): warnings only.
    "loggers": {"django.db.backends": {"level": "WARNING"}, "httpx": {"level": "WARNING"}, "httpcore": {"level": "WARNING"}},
}

# --- Messaging gateways (base URLs are settings so loopback stand-ins can be used) --------
# Evolution API v2 (WhatsApp Web): one self-hosted gateway, its global API key (header apikey).
EVOLUTION_API_BASE_URL = env_str("EVOLUTION_API_BASE_URL").rstrip("/")
EVOLUTION_API_KEY = env_str("EVOLUTION_API_KEY")
# WAHA (WhatsApp HTTP API, WhatsApp Web): one self-hosted gateway, its API key (header X-Api-Key).
WAHA_API_BASE_URL = env_str("WAHA_API_BASE_URL").rstrip("/")
WAHA_API_KEY = env_str("WAHA_API_KEY")
# SMS Gateway for Android in cloud mode (local mode uses the device address of each account).
SMS_GATEWAY_CLOUD_BASE_URL = env_str("SMS_GATEWAY_CLOUD_BASE_URL", "https://api.sms-gate.app/3rdparty/v1").rstrip("/")

# --- GoHighLevel (marketplace app + conversation provider) ----------------------------------
GHL_CLIENT_ID = env_str("GHL_CLIENT_ID")
GHL_CLIENT_SECRET = env_str("GHL_CLIENT_SECRET")
GHL_SCOPES = env_str(
    "GHL_SCOPES",
    "conversations/message.write conversations/message.readonly conversations.readonly conversations.write "
    "contacts.readonly contacts.write users.readonly locations/tags.write locations.readonly",
)
# The marketplace app's id (GET /oauth/installedLocations needs it for agency installs)
GHL_APP_ID = env_str("GHL_APP_ID")
# An install started in GHL for a sub-account no WhatSnap location holds makes a new location
GHL_PROVISION_LOCATIONS = env_bool("GHL_PROVISION_LOCATIONS", True)
GHL_API_BASE_URL = env_str("GHL_API_BASE_URL", "https://services.leadconnectorhq.com").rstrip("/")
GHL_AUTHORIZE_URL = env_str("GHL_AUTHORIZE_URL", "https://marketplace.gohighlevel.com/oauth/chooselocation")
# The conversation provider created in the marketplace app (type SMS: the default SMS provider, or an extra custom one).
GHL_CONVERSATION_PROVIDER_ID = env_str("GHL_CONVERSATION_PROVIDER_ID")
# Optional second provider (an extra custom provider of type SMS) for WhatsApp messages, so GHL shows them apart.
GHL_WHATSAPP_PROVIDER_ID = env_str("GHL_WHATSAPP_PROVIDER_ID")
# Ed25519 public key (PEM) that signs X-GHL-Signature; legacy RSA key for X-WH-Signature.
GHL_WEBHOOK_PUBLIC_KEY = env_str("GHL_WEBHOOK_PUBLIC_KEY").replace("\\n", "\n")
GHL_WEBHOOK_LEGACY_PUBLIC_KEY = env_str("GHL_WEBHOOK_LEGACY_PUBLIC_KEY").replace("\\n", "\n")
# GHL's documented limits per app per location: 100 requests / 10 s burst, 200,000 a day.
GHL_RATE_LIMIT_REQUESTS = env_int("GHL_RATE_LIMIT_REQUESTS", 100)
GHL_RATE_LIMIT_WINDOW_SECONDS = env_float("GHL_RATE_LIMIT_WINDOW_SECONDS", 10.0)
GHL_DAILY_LIMIT = env_int("GHL_DAILY_LIMIT", 200_000)
GHL_TIMEOUT_SECONDS = env_float("GHL_TIMEOUT_SECONDS", 15.0)
