"""Settings for the test suite: production settings with test-only secrets and the fakes allowed."""

import os
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production")
os.environ.setdefault("HERALD_ENCRYPTION_KEYS", "n3GbGg0ZxH2mXl3aYk6b5VQp3c9hQ2-0K8pRrU2q7jA=")
os.environ.setdefault("HERALD_ALLOWED_PRIVATE_HOSTS", "127.0.0.1,localhost")
os.environ.setdefault("SECURE_COOKIES", "0")
os.environ.setdefault("PUBLIC_URL", "http://testserver")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
# Under the checkout's var/ whatever the working directory (a benchmark run from bench/ too).
os.environ.setdefault("MEDIA_ROOT", str(Path(__file__).resolve().parents[1] / "var" / "test-media"))

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast user creation
STATIC_ROOT = BASE_DIR / "static"  # noqa: F405 - whitenoise wants an existing directory
