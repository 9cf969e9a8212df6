"""Production settings refuse what would be unsafe; each case imports the settings afresh."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOOD_KEY = "k3Jq9vX2-bQ8rT1mZ7yL4nH6cW0pF5sD_aE3gU9iO2"
FERNET = "n3GbGg0ZxH2mXl3aYk6b5VQp3c9hQ2-0K8pRrU2q7jA="


def settings_with(**env: str) -> subprocess.CompletedProcess[str]:
    """Import config.settings in a new process with this environment; print a few values."""
    script = (
        "import config.settings as s; "
        "print(s.SECURE_HSTS_SECONDS, s.SECURE_SSL_REDIRECT, "
        "getattr(s, 'SECURE_PROXY_SSL_HEADER', None))"
    )
    base = {"PATH": os.environ.get("PATH", ""), "HERALD_ENCRYPTION_KEYS": FERNET}
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    "key",
    [
        "change-me-to-a-long-random-string",  # the one in .env.example
        "insecure-development-key-do-not-use-in-production",
        "django-insecure-0123456789abcdefghijklmnopqrstuvwxyz",
        "short-but-secret",
    ],
)
def test_with_debug_off_a_placeholder_or_short_secret_key_is_refused(key):
    result = settings_with(DEBUG="0", SECRET_KEY=key)

    assert result.returncode != 0
    assert "SECRET_KEY is a published placeholder or shorter than 32 characters" in result.stderr


def test_a_long_secret_key_starts_with_hsts_and_the_https_options():
    default = settings_with(DEBUG="0", SECRET_KEY=GOOD_KEY)
    behind_proxy = settings_with(
        DEBUG="0",
        SECRET_KEY=GOOD_KEY,
        SECURE_SSL_REDIRECT="1",
        SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
    )

    assert default.returncode == 0, default.stderr
    assert default.stdout.split() == ["31536000", "False", "None"]
    assert behind_proxy.stdout.strip() == "31536000 True ('HTTP_X_FORWARDED_PROTO', 'https')"


def test_with_debug_on_the_placeholder_is_fine_for_development():
    result = settings_with(DEBUG="1", SECRET_KEY="change-me-to-a-long-random-string")

    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == "0"  # no HSTS in development
