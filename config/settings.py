"""RepayDesk settings, read from the environment.

DATABASE_URL unset -> the embedded PostgreSQL under .data/ (see config/embedded_db.py).
REPAYDESK_QUEUE=redis (+ REDIS_URL) switches django-q2 from its ORM broker to Redis.
"""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).lower() in {"1", "true", "yes", "on"}


SECRET_KEY = os.environ.get("SECRET_KEY", "dev-only-insecure-key-change-me-in-production")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "pgtrigger",
    "pghistory",
    "django_q",
    "import_export",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "axes",
    "servicing",
    "notices",
    "collections_app",
    "console",
    "portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "pghistory.middleware.HistoryMiddleware",
    "axes.middleware.AxesMiddleware",
]
# History context (who, which URL) for the requests that change data; a GET changes nothing tracked, and
# opening a context on every page view costs each borrower page a share of its budget.
PGHISTORY_MIDDLEWARE_METHODS = ("POST", "PUT", "PATCH", "DELETE")

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
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: PostgreSQL everywhere -------------------------------------------------------------
if os.environ.get("DATABASE_URL"):
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"], conn_max_age=600)}
else:
    from config import embedded_db

    DATABASES = {"default": {"ENGINE": "django.db.backends.postgresql", "CONN_MAX_AGE": 600,
                             **embedded_db.ensure_running()}}
DATABASES["default"].setdefault("TEST", {})
if os.environ.get("REPAYDESK_TEST_DB"):  # parallel test runs on one server each get their own test database
    DATABASES["default"]["TEST"]["NAME"] = os.environ["REPAYDESK_TEST_DB"]
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# JIT compiles a plan when its *estimated* cost is high; the set-based steps' estimates often are, and compiling
# took seconds for statements that run in a fraction of one (the debit batch, the no-debit sweep). Off for all.
_options = DATABASES["default"].setdefault("OPTIONS", {})
_options["options"] = f"{_options.get('options', '')} -c jit=off".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django.contrib.auth.backends.ModelBackend"]

# --- Language and time: Chinese first, Asia/Shanghai --------------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("简体中文")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / ".data" / "staticfiles"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / ".data" / "media"))
MEDIA_URL = "media/"

LOGIN_URL = "/login/"
# database sessions (same table, expiry and logout as django.contrib.sessions.backends.db) read with one
# prepared statement: portal/sessions.py
SESSION_ENGINE = "portal.sessions"
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", 30 * 60))
SESSION_SAVE_EVERY_REQUEST = False  # absolute expiry; saving every request costs a write per page view
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False
X_FRAME_OPTIONS = "DENY"

# --- Workers: django-q2, ORM broker by default --------------------------------------------------
Q_CLUSTER = {
    "name": "repaydesk",
    "workers": int(os.environ.get("Q_WORKERS", 2)),
    "timeout": 1800,
    "retry": 2400,  # must exceed timeout + queue wait, or a long task runs twice at once
    "max_attempts": 3,
    "catch_up": False,
    "ack_failures": True,
    "save_limit": 1000,
    "label": "Tasks",
    "sync": env_bool("Q_SYNC", False),
}
if os.environ.get("REPAYDESK_QUEUE", "orm") == "redis":
    Q_CLUSTER["redis"] = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
else:
    Q_CLUSTER["orm"] = "default"

# --- Audit history ------------------------------------------------------------------------------
PGHISTORY_DEFAULT_TRACKERS = None

# --- django-import-export -----------------------------------------------------------------------
IMPORT_EXPORT_SKIP_ADMIN_LOG = True
IMPORT_EXPORT_USE_TRANSACTIONS = True

# --- REST API -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "COERCE_DECIMAL_TO_STRING": True,
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.UserRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"user": os.environ.get("API_THROTTLE", "6000/minute")},
}
SPECTACULAR_SETTINGS = {"TITLE": "RepayDesk API", "VERSION": "1.0.0", "SERVE_INCLUDE_SCHEMA": False}

# --- Login protection (django-axes): lock on username + IP, with a cool-off --------------------
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_FAILURE_LIMIT = int(os.environ.get("AXES_FAILURE_LIMIT", 5))
AXES_COOLOFF_TIME = 0.25  # hours
AXES_RESET_ON_SUCCESS = True
AXES_IPWARE_META_PRECEDENCE_ORDER = ["HTTP_X_FORWARDED_FOR", "REMOTE_ADDR"]

# --- Business settings --------------------------------------------------------------------------
REPAYDESK = {
    "LENDER_NAME": os.environ.get("REPAYDESK_LENDER_NAME", "瑞沛消费金融有限公司"),
    "PUBLIC_BASE_URL": os.environ.get("REPAYDESK_PUBLIC_BASE_URL", "http://127.0.0.1:8000"),
    "PRE_DUE_DAYS": int(os.environ.get("REPAYDESK_PRE_DUE_DAYS", 3)),
    "QUIET_HOURS": (22, 8),
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"}},
    "root": {"handlers": ["stderr"], "level": os.environ.get("LOG_LEVEL", "WARNING")},
}

# --- Collections (催收): contact rules with the legal values as defaults (collections.md) --------
COLLECTIONS = {
    "QUIET_START": os.environ.get("COLLECTIONS_QUIET_START", "22:00"),  # no contact from … (Beijing time)
    "QUIET_END": os.environ.get("COLLECTIONS_QUIET_END", "08:00"),  # … until
    "CONTACT_TIME_ZONE": "Asia/Shanghai",
    "MAX_CONNECTED_CALLS_PER_DAY": 3,  # per borrower, lender and agencies together
    "MAX_UNANSWERED_DIALS_PER_NUMBER_PER_DAY": 6,
    "MAX_MESSAGES_PER_DAY": int(os.environ.get("COLLECTIONS_MAX_MESSAGES_PER_DAY", 2)),
    "MAX_MESSAGES_PER_WEEK": int(os.environ.get("COLLECTIONS_MAX_MESSAGES_PER_WEEK", 6)),
    "UNREACHABLE_AFTER_FAILED_ATTEMPTS": 3,  # before an emergency contact may be called
    "UNREACHABLE_WINDOW_DAYS": 7,
    "MESSAGE_TIME": "09:00",  # when the business day's automatic messages are scheduled (local)
    "ASSIGNMENT": os.environ.get("COLLECTIONS_ASSIGNMENT", "bucket"),  # bucket | round_robin | load
    "PROMISE_MAX_DAYS": 14,
    "WAIVER_LIMITS": {"collector": "0", "supervisor": "5000", "admin": "50000"},  # approver's limit, CNY
    "COMPLAINT_DAYS": (15, 30, 60),  # answer by; extended; extended again with approval
    "HANDOVER_NOTICE_DAYS": 3,
    "INLINE_MESSAGE_LIMIT": 2000,  # more automatic messages than this go to django-q2 in chunks
    "MESSAGE_CHUNK": 5000,
}

# --- Notices (issue 3): channel backends like EMAIL_BACKEND; defaults in notices/conf.py --------
NOTICES = {
    "BACKENDS": {
        "sms": os.environ.get("NOTICES_SMS_BACKEND", "notices.backends.console.ConsoleBackend"),
        "email": "notices.backends.email.EmailBackend",  # Django mail: EMAIL_HOST / EMAIL_PORT / …
        "in_app": "notices.backends.in_app.InAppBackend",
        "letter": "notices.backends.letter.LetterBackend",
    },
    "SMS_HTTP": {  # notices.backends.sms_http.HttpSmsBackend
        "ENDPOINT": os.environ.get("NOTICES_SMS_ENDPOINT", ""),
        "ACCESS_KEY": os.environ.get("NOTICES_SMS_ACCESS_KEY", ""),
        "SECRET": os.environ.get("NOTICES_SMS_SECRET", ""),
        "SIGN_NAME": os.environ.get("NOTICES_SMS_SIGN_NAME", ""),
    },
    "SYNC_TASKS": env_bool("NOTICES_SYNC_TASKS", False),
    "EMAIL_TIMEOUT": int(os.environ.get("NOTICES_EMAIL_TIMEOUT", 10)),
}
