from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from accounts.models import Membership, Role, User

pytestmark = pytest.mark.django_db


def test_create_user_makes_an_owner_of_a_new_workspace(capsys):
    call_command(
        "create_user", email="Ops@Example.com", password="s3cret-pass", workspace="Ops Team"
    )

    user = User.objects.get(email="ops@example.com")
    assert user.check_password("s3cret-pass")
    membership = Membership.objects.get(user=user)
    assert membership.role == Role.OWNER
    assert membership.workspace.slug == "ops-team"
    assert "Log in at /login/" in capsys.readouterr().out


def test_create_user_joins_existing_workspace_with_role(workspace):
    call_command(
        "create_user",
        email="eve@example.com",
        password="pw-123456",
        workspace=workspace.slug,
        role="viewer",
    )
    assert Membership.objects.get(user__email="eve@example.com").workspace == workspace


def test_duplicate_email_is_a_clear_error(alice):
    with pytest.raises(CommandError, match="already exists"):
        call_command("create_user", email=alice.email, password="x", workspace="Other")


def test_user_can_log_in_with_email(client, alice):
    from tests.conftest import PASSWORD

    response = client.post("/login/", {"username": alice.email, "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").status_code == 200
