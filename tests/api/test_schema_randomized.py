"""A randomized schemathesis run against a live server: every check (schemathesis 4 runs them
all; tests/api/schemathesis.toml says where an answer the schema cannot express is right), the
stateful phase (links between operations), a time budget, and a new seed for every commit (taken
from its hash, so CI explores what the author's run explored; printed; HERALD_SCHEMATHESIS_SEED
replays or varies it). The derandomized run in test_schema.py stays the fast, repeatable gate;
this one looks further with each commit."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from accounts.models import Membership
from accounts.tokens import create_token
from tests.fixtures.api import API

# Seconds for the whole run (examples, coverage, fuzzing, then the stateful phase).
TIME_BUDGET = int(os.environ.get("HERALD_SCHEMATHESIS_SECONDS", "75"))
HOOKS = Path(__file__).with_name("schemathesis_hooks.py")
CONFIG = Path(__file__).with_name("schemathesis.toml")


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("api_objects")
def test_randomized_run_with_stateful_phase_finds_no_mismatch(
    live_server: Any,
    tmp_path: Path,
    membership: Membership,
    fake_mastodon: Any,
    fake_pds: Any,
    fake_threads: Any,
) -> None:
    _, token = create_token(membership, name="schemathesis", scope="write")
    seed = int(os.environ.get("HERALD_SCHEMATHESIS_SEED") or _commit_seed())
    print(f"schemathesis seed: {seed} (replay with HERALD_SCHEMATHESIS_SEED={seed})")

    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("st")),
            f"--config-file={CONFIG}",
            "run",
            f"{live_server.url}{API}/schema/?format=json",
            "--phases=examples,coverage,fuzzing,stateful",
            f"--max-time={TIME_BUDGET}",
            f"--seed={seed}",
            "--workers=1",
            "--generation-database=none",
            "--suppress-health-check=all",
            f"--header=Authorization: Bearer {token}",
        ],
        env={
            **os.environ,
            "SCHEMATHESIS_HOOKS": str(HOOKS),
            "HERALD_FAKE_MASTODON_URL": fake_mastodon.url,
            "HERALD_FAKE_PDS_URL": fake_pds.url,
            "NO_COLOR": "1",
        },
        cwd=tmp_path,  # schemathesis keeps a cache in its working directory
        capture_output=True,
        text=True,
        timeout=TIME_BUDGET + 120,
    )

    print(result.stdout, result.stderr)
    assert result.returncode == 0, f"schemathesis found mismatches with seed {seed}: see its output"


def _commit_seed() -> int:
    """A seed from the checked-out commit's hash; a random one outside a git checkout."""
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=CONFIG.parent, capture_output=True, text=True
    )
    if head.returncode == 0 and head.stdout.strip():
        return int(head.stdout.strip()[:8], 16) % 2**31
    return random.randrange(2**31)
