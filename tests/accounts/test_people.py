"""People: first run, invitations by email (through a real SMTP server), members and roles,
account settings, password reset, sign-up, new workspaces."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from accounts.models import ApiToken, Invitation, Membership, Role, User, Workspace
from scheduler.models import Activity
from tests.conftest import PASSWORD, add_member
from tests.fixtures.api import API, bearer_client
from tests.fixtures.mail import body, links

pytestmark = pytest.mark.django_db
NEW_PASSWORD = "a long new passphrase 42"


def logged_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


# -- first run and sign-up ---------------------------------------------------------------------------
def test_first_run_asks_for_the_first_owner_then_never_again(client):
    assert client.get("/login/").url == "/setup/"
    page = client.get("/setup/")
    assert page.status_code == 200
    assert b"Workspace name" in page.content

    response = client.post(
        "/setup/",
        {
            "email": "Owner@Example.com",
            "password": NEW_PASSWORD,
            "workspace_name": "Acme",
            "timezone": "Europe/Berlin",
            "name": "Olga",
        },
    )

    assert response.status_code == 302
    owner = User.objects.get()
    assert (owner.email, owner.name, owner.timezone) == (
        "owner@example.com",
        "Olga",
        "Europe/Berlin",
    )
    membership = Membership.objects.get(user=owner)
    assert (membership.role, membership.workspace.name) == (Role.OWNER, "Acme")
    assert client.get("/").status_code == 200  # logged in
    assert Client().get("/setup/").url == "/login/"
    assert Client().get("/login/").status_code == 200


def test_first_run_keeps_what_was_typed_and_says_what_is_wrong(client):
    response = client.post(
        "/setup/",
        {"email": "not-an-email", "password": "123", "workspace_name": "", "timezone": "Mars/Base"},
    )

    assert response.status_code == 400
    page = response.content.decode()
    assert "Enter an email address" in page
    assert "too short" in page
    assert "Name your workspace" in page
    assert "IANA time zone" in page
    assert 'value="not-an-email"' in page
    assert not User.objects.exists()


def test_public_sign_up_is_off_unless_a_setting_turns_it_on(client, alice, settings):
    form = {
        "email": "new@example.com",
        "password": NEW_PASSWORD,
        "workspace_name": "Newco",
        "timezone": "UTC",
    }
    assert client.post("/signup/", form).status_code == 404
    assert b"Sign up" not in client.get("/login/").content

    settings.HERALD_SIGNUP_OPEN = True
    assert client.post("/signup/", form).status_code == 302
    assert Membership.objects.get(user__email="new@example.com").role == Role.OWNER


# -- invitations -------------------------------------------------------------------------------------------
def invite(client, email, role="editor"):
    return client.post("/settings/members/", {"email": email, "role": role})


def test_invited_person_joins_from_the_emailed_link(alice, workspace, smtp_server):
    owner = logged_in(alice)

    response = invite(owner, "Carol@Example.com", "contributor")

    assert response.status_code == 302
    (message,) = smtp_server.wait_for("carol@example.com")
    assert message["Subject"] == "[Herald] alice@example.com invites you to Acme"
    assert "as Contributor (needs approval)" in body(message)
    (link,) = links(message)
    path = link.removeprefix("http://testserver")
    visitor = Client()
    page = visitor.get(path)
    assert b"Create your account for <strong>carol@example.com</strong>" in page.content

    joined = visitor.post(path, {"name": "Carol", "password": NEW_PASSWORD, "timezone": "UTC"})

    assert joined.status_code == 302
    carol = User.objects.get(email="carol@example.com")
    assert Membership.objects.get(user=carol, workspace=workspace).role == Role.CONTRIBUTOR
    assert visitor.get("/").status_code == 200
    assert Invitation.objects.get().accepted_at is not None
    assert visitor.get(path).status_code == 410  # used once
    verbs = list(Activity.objects.order_by("id").values_list("verb", "changes__member"))
    assert verbs[-2:] == [("invited", "carol@example.com"), ("joined", "carol@example.com")]


def test_existing_user_accepts_into_a_second_workspace(alice, bob, smtp_server):
    invite(logged_in(alice), "bob@example.com", "viewer")
    path = links(smtp_server.wait_for("bob@example.com")[0])[0].removeprefix("http://testserver")

    assert Client().post(path).url.startswith("/login/?next=")
    wrong = logged_in(User.objects.create_user("eve@example.com", PASSWORD))
    refused = wrong.post(path)
    assert refused.status_code == 400
    assert b"This invitation is for bob@example.com" in refused.content

    assert logged_in(bob).post(path).status_code == 302
    assert sorted(Membership.objects.filter(user=bob).values_list("workspace__name", "role")) == [
        ("Acme", "viewer"),
        ("Globex", "owner"),
    ]


def test_invitation_links_expire_and_revoking_ends_them(alice, smtp_server, settings):
    owner = logged_in(alice)
    invite(owner, "late@example.com")
    path = links(smtp_server.wait_for("late@example.com")[0])[0].removeprefix("http://testserver")

    with time_machine.travel(
        timezone.now() + timedelta(days=settings.HERALD_INVITATION_DAYS, hours=1)
    ):
        expired = Client().get(path)
    assert expired.status_code == 410
    assert b"expired" in expired.content

    invitation = Invitation.objects.get()
    owner.post(f"/settings/invitations/{invitation.pk}/resend/")
    assert len(smtp_server.wait_for("late@example.com", count=2)) == 2
    owner.post(f"/settings/invitations/{invitation.pk}/revoke/")
    revoked = Client().get(path)
    assert revoked.status_code == 410
    assert b"revoked" in revoked.content


def test_only_owners_and_admins_invite_and_only_owners_make_owners(workspace, smtp_server):
    admin = add_member(workspace, "admin@example.com", Role.ADMIN)
    editor = add_member(workspace, "editor@example.com", Role.EDITOR)

    assert invite(logged_in(editor.user), "x@example.com").status_code == 403
    owner_invite = invite(logged_in(admin.user), "x@example.com", "owner")
    assert owner_invite.status_code == 400
    assert b"Only owners can make someone an owner" in owner_invite.content
    already = invite(logged_in(admin.user), "editor@example.com")
    assert b"already a member" in already.content
    assert smtp_server.messages == []


# -- members ------------------------------------------------------------------------------------------------
def test_removed_members_api_token_answers_401_at_once(alice, workspace, mastodon_channel):
    editor = add_member(workspace, "editor@example.com", Role.EDITOR)
    api = bearer_client(editor)
    assert api.get(f"{API}/posts").status_code == 200

    response = logged_in(alice).post(f"/settings/members/{editor.pk}/remove/")

    assert response.status_code == 302
    assert api.get(f"{API}/posts").status_code == 401
    assert not Membership.objects.filter(pk=editor.pk).exists()
    assert ApiToken.objects.get(user=editor.user).revoked_at is not None
    assert Activity.objects.filter(verb="removed", member=editor.user).exists()


def _role_forms(page: str) -> dict[str, tuple[str, list[str]]]:
    """Each row's role form on the members page: its address, the selected role, the choices."""
    forms = re.findall(r'action="([^"]+/role/)".*?<select[^>]*>(.*?)</select>', page, re.S)
    return {
        action: (
            "".join(re.findall(r'value="(\w+)" selected', options)),
            re.findall(r'value="(\w+)"', options),
        )
        for action, options in forms
    }


def test_members_page_offers_each_member_the_roles_the_reader_may_grant(
    alice, membership, workspace
):
    admin = add_member(workspace, "admin@example.com", Role.ADMIN)
    viewer = add_member(workspace, "viewer@example.com", Role.VIEWER)
    everyone = ["owner", "admin", "editor", "contributor", "viewer"]

    by_owner = logged_in(alice).get("/settings/members/").content.decode()
    by_admin = logged_in(admin.user).get("/settings/members/").content.decode()

    assert _role_forms(by_owner) == {
        f"/settings/members/{admin.pk}/role/": ("admin", everyone),
        f"/settings/members/{viewer.pk}/role/": ("viewer", everyone),
    }
    assert _role_forms(by_admin) == {
        f"/settings/members/{viewer.pk}/role/": ("viewer", everyone[1:])
    }
    assert f'action="/settings/members/{viewer.pk}/remove/"' in by_admin
    assert f"/settings/members/{membership.pk}/remove/" not in by_admin  # owners are the owner's
    assert '<option value="editor" selected>' in by_admin  # the invitation's default role


def test_roles_change_but_a_workspace_always_keeps_an_owner(alice, membership, workspace):
    admin = add_member(workspace, "admin@example.com", Role.ADMIN)
    owner = logged_in(alice)

    owner.post(f"/settings/members/{membership.pk}/role/", {"role": "editor"}, follow=True)
    left = owner.post("/settings/members/leave/", follow=True)
    assert b"A workspace needs an owner" in left.content
    membership.refresh_from_db()
    assert membership.role == Role.OWNER

    assert (
        logged_in(admin.user)
        .post(f"/settings/members/{membership.pk}/role/", {"role": "viewer"})
        .status_code
        == 403
    )
    owner.post(f"/settings/members/{admin.pk}/role/", {"role": "owner"})
    admin.refresh_from_db()
    assert admin.role == Role.OWNER
    assert owner.post("/settings/members/leave/").status_code == 302
    assert not Membership.objects.filter(pk=membership.pk).exists()
    entries = list(
        Activity.objects.filter(verb__in=["role_changed", "left"])
        .order_by("id")
        .values_list("verb", flat=True)
    )
    assert entries == ["role_changed", "left"]


def test_the_only_owner_is_told_why_they_cannot_leave_instead_of_offered_to(
    alice, membership, workspace
):
    page = logged_in(alice).get("/settings/members/").content.decode()
    assert "/settings/members/leave/" not in page
    assert "You are its only owner: make someone else owner to leave." in page

    add_member(workspace, "second-owner@example.com", Role.OWNER)
    page = logged_in(alice).get("/settings/members/").content.decode()
    assert 'action="/settings/members/leave/"' in page
    assert "only owner" not in page


def test_invitations_say_when_they_were_sent_in_words(alice, workspace, smtp_server):
    invite(logged_in(alice), "erin@example.com")
    assert "sent just now" in logged_in(alice).get("/settings/members/").content.decode()

    Invitation.objects.filter(email="erin@example.com").update(
        sent_at=timezone.now() - timedelta(hours=2, minutes=5)
    )
    page = logged_in(alice).get("/settings/members/").content.decode()
    assert "sent 2\xa0hours, 5\xa0minutes ago" in page
    assert "0\xa0minutes" not in page


# -- account, password, workspaces ---------------------------------------------------------------------------
def test_account_settings_are_saved_and_checked(alice):
    client = logged_in(alice)

    bad = client.post(
        "/settings/account/", {"name": "A", "timezone": "Nowhere", "language": "english!"}
    )
    assert bad.status_code == 400
    assert b"IANA time zone" in bad.content and b"language tag" in bad.content

    client.post(
        "/settings/account/",
        {
            "name": "Alice A.",
            "timezone": "America/New_York",
            "language": "en-US",
            "email_notifications": ["mentioned", "post_reviewed"],
        },
    )
    alice.refresh_from_db()
    assert (alice.name, alice.timezone, alice.language) == ("Alice A.", "America/New_York", "en-US")
    assert alice.email_notifications == ["post_reviewed", "mentioned"]


def test_password_change_and_reset_by_email(alice, smtp_server):
    from django.core.cache import cache

    cache.clear()
    client = logged_in(alice)
    changed = client.post(
        "/settings/password/",
        {"old_password": PASSWORD, "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert changed.url == "/settings/password/changed/"

    Client().post("/password-reset/", {"email": "alice@example.com"})
    Client().post("/password-reset/", {"email": "nobody@example.com"})
    (message,) = smtp_server.wait_for("alice@example.com")
    assert smtp_server.to("nobody@example.com") == []
    path = links(message)[0].removeprefix("http://testserver")
    visitor = Client()
    form_page = visitor.get(path, follow=True)
    assert b"Choose a new password" in form_page.content
    visitor.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "yet another passphrase 7", "new_password2": "yet another passphrase 7"},
    )
    assert Client().login(username="alice@example.com", password="yet another passphrase 7")


def test_password_reset_is_limited_per_address_and_per_client(alice, smtp_server, settings):
    from django.core.cache import cache

    cache.clear()
    settings.PASSWORD_RESET_LIMIT = 2
    answers = [
        Client().post("/password-reset/", {"email": "alice@example.com"}).url for _ in range(4)
    ]

    assert answers == ["/password-reset/sent/"] * 4  # the same answer every time
    assert len(smtp_server.wait_for("alice@example.com", count=2)) == 2
    cache.delete("herald:pwreset:email:alice@example.com")
    Client().post("/password-reset/", {"email": "alice@example.com"})  # same client IP: refused
    assert len(smtp_server.to("alice@example.com")) == 2


def test_anyone_creates_a_workspace_and_owns_it(alice):
    client = logged_in(alice)

    response = client.post("/settings/workspaces/new/", {"name": "Side project", "timezone": "UTC"})

    assert response.status_code == 302
    workspace = Workspace.objects.get(name="Side project")
    assert Membership.objects.get(user=alice, workspace=workspace).role == Role.OWNER
    assert client.session["workspace_id"] == workspace.pk


def test_default_language_of_the_account_fills_new_posts(alice):
    alice.language = "pt-BR"
    alice.save()

    page = logged_in(alice).get("/compose/", HTTP_ACCEPT_LANGUAGE="de").content.decode()

    assert re.search(r'name="language"[^>]*value="pt-BR"', page), "the composer's language"


def test_an_invitation_whose_email_fails_is_kept_and_says_so(alice, smtp_server, settings):
    from tests.fixtures.mail import free_port

    settings.EMAIL_PORT = free_port()  # nothing listens there: the mail server is down

    response = invite(logged_in(alice), "dana@example.com")

    assert response.status_code == 400
    assert b"is saved, but the email could not be sent" in response.content
    invitation = Invitation.objects.get(email="dana@example.com")
    assert invitation.sent_at is None
    assert b"not sent yet" in logged_in(alice).get("/settings/members/").content
    settings.EMAIL_PORT = smtp_server.port
    logged_in(alice).post(f"/settings/invitations/{invitation.pk}/resend/")
    assert len(smtp_server.wait_for("dana@example.com")) == 1
