"""Every web page and API endpoint, requested by each role: the answer follows the rule on
`accounts.models.Membership` named for it (the one place role rules live).

ROUTES names, for each URL, the Membership rule that guards it (None: any member). The test
evaluates that rule for the member, requests the URL, and checks a refusal is a 403 exactly
when the rule says no. A URL missing from ROUTES (and not public) fails the completeness test.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from accounts.models import ApiToken, Membership, Role, User
from accounts.tokens import create_token
from scheduler.models import Channel, Delivery, Post, Webhook
from scheduler.webhooks import create_webhook
from tests.conftest import add_member, schedule, upload_media
from tests.fixtures.api import bearer_client

pytestmark = pytest.mark.django_db

# Roles that may do least go first, so a refusal is checked before others change the data.
ROLES = [Role.VIEWER, Role.CONTRIBUTOR, Role.EDITOR, Role.ADMIN, Role.OWNER]
# Reached without a workspace role: sign-in and sign-up pages, links from emails and feeds.
PUBLIC = {
    "login",
    "logout",
    "healthz",
    "setup",
    "signup",
    "accept_invitation",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
    "scheduler:public_media",
    "scheduler:calendar_feed",
    "api:schema",
    "api:docs",
    "api:None",
}


@dataclass
class World:
    """Acme with one member per role, a channel, and a contributor's post awaiting approval."""

    members: dict[str, Membership]
    channel: Channel
    post: Post
    media: Any

    @property
    def contributor(self) -> Membership:
        return self.members[Role.CONTRIBUTOR]

    def fresh_post(self) -> Post:
        return schedule(
            self.contributor,
            [self.channel],
            "Another",
            at=timezone.now() + timedelta(days=2),
        )

    def fresh_member(self) -> Membership:
        return add_member(
            self.channel.workspace, f"m{User.objects.count()}@example.com", Role.EDITOR
        )


Rule = Callable[[Membership, World, dict[str, Any]], bool]


def rule(name: str | None, subject: str | None = None) -> Rule:
    """The Membership property `name` (or method applied to the request's `subject`)."""

    def check(member: Membership, world: World, args: dict[str, Any]) -> bool:
        if name is None:
            return True
        value = getattr(member, name)
        return bool(value(args[subject]) if subject else value)

    return check


@dataclass
class Route:
    name: str
    method: str = "get"
    allowed: Rule = field(default_factory=lambda: rule(None))
    # (world, member) -> (URL kwargs, request data, objects the rule is about)
    build: Callable[[World, Membership], tuple[dict[str, Any], dict[str, Any], dict[str, Any]]] = (
        lambda world, member: ({}, {}, {})
    )
    api: bool = False


def post_args(world: World, member: Membership) -> Any:
    return {"pk": world.post.pk}, {}, {"post": world.post}


def fresh_post_args(data: dict[str, Any] | None = None) -> Any:
    def build(world: World, member: Membership) -> Any:
        post = world.fresh_post()
        return {"pk": post.pk}, data or {}, {"post": post}

    return build


def channel_args(data: dict[str, Any] | None = None) -> Any:
    return lambda world, member: ({"pk": world.channel.pk}, data or {}, {})


def delivery_args(world: World, member: Membership) -> Any:
    return {"pk": world.post.deliveries.get().pk}, {}, {}


def target_member(data: dict[str, Any]) -> Any:
    def build(world: World, member: Membership) -> Any:
        target = world.fresh_member()
        return {"pk": target.pk}, data, {"target": target}

    return build


def own_token(world: World, member: Membership) -> Any:
    token, _ = create_token(member, name="walk")
    return {"pk": token.pk}, {}, {}


def invitation(world: World, member: Membership) -> Any:
    from accounts.models import Invitation

    row = Invitation.objects.create(
        workspace=world.channel.workspace,
        email=f"i{Invitation.objects.count()}@example.com",
        key=f"k{Invitation.objects.count()}",
    )
    return {"pk": row.pk, "action": "revoke"}, {}, {}


def calendar_move(world: World, member: Membership) -> Any:
    post = world.fresh_post()
    day = (timezone.now() + timedelta(days=3)).date().isoformat()
    return {}, {"delivery": post.deliveries.get().pk, "day": day}, {"post": post}


def bulk_cancel_args(world: World, member: Membership) -> Any:
    """Asks to cancel one post: the confirmation page (each post is checked with can_cancel)."""
    return {}, {"post": [world.fresh_post().pk], "action": "cancel"}, {}


def reschedule_args(world: World) -> Any:
    post = world.fresh_post()
    at = timezone.localtime(timezone.now() + timedelta(days=4)).strftime("%Y-%m-%dT%H:%M")
    return {"pk": post.pk}, {"scheduled_at": at}, {"post": post}


def changes_member(member: Membership, world: World, args: dict[str, Any]) -> bool:
    return member.can_change_member(args["target"]) and member.can_grant(Role.VIEWER)


WEB = [
    Route("scheduler:dashboard"),
    Route("scheduler:compose", allowed=rule("can_compose")),
    Route("scheduler:channels"),
    Route("scheduler:post_detail", build=post_args),
    Route("scheduler:cancel_post", "post", rule("can_cancel", "post"), fresh_post_args()),
    Route("scheduler:retry_delivery", "post", rule("can_publish"), delivery_args),
    Route("scheduler:bulk_action", "post", build=bulk_cancel_args),
    Route("scheduler:compose_check", "post", rule("can_compose")),
    Route("scheduler:compose_autosave", "post", rule("can_compose")),
    Route("scheduler:upload_media", "post", rule("can_compose")),
    Route("scheduler:media_file", build=lambda world, member: ({"pk": world.media.pk}, {}, {})),
    Route("scheduler:link_card"),
    Route("scheduler:edit_post", allowed=rule("can_change_post", "post"), build=post_args),
    Route("scheduler:duplicate_post", "post", rule("can_compose"), post_args),
    Route(
        "scheduler:reschedule_post",
        "post",
        rule("can_change_post", "post"),
        lambda world, member: reschedule_args(world),
    ),
    Route("scheduler:share_post_now", "post", rule("can_publish"), fresh_post_args()),
    Route("scheduler:connect_mastodon", allowed=rule("can_manage_channels")),
    Route("scheduler:mastodon_callback", allowed=rule("can_manage_channels")),
    Route("scheduler:connect_bluesky", allowed=rule("can_manage_channels")),
    Route("scheduler:connect_threads", allowed=rule("can_manage_channels")),
    Route("scheduler:threads_callback", allowed=rule("can_manage_channels")),
    Route("scheduler:review", allowed=rule("can_approve")),
    Route("scheduler:approve_post", "post", rule("can_approve"), fresh_post_args()),
    Route("scheduler:reject_post", "post", rule("can_approve"), fresh_post_args({"reason": "no"})),
    Route("scheduler:add_comment", "post", rule("can_comment"), fresh_post_args({"text": "hi"})),
    Route("scheduler:activity"),
    Route("scheduler:notifications"),
    Route("scheduler:mark_read", "post"),
    Route("scheduler:bell"),
    Route(
        "scheduler:channel_action",
        "post",
        rule("can_manage_channels"),
        lambda world, member: ({"pk": world.channel.pk, "action": "pause"}, {}, {}),
    ),
    Route("scheduler:calendar"),
    Route("scheduler:calendar_move", "post", rule("can_change_post", "post"), calendar_move),
    Route("scheduler:feed_settings"),
    Route("scheduler:queue_index"),
    Route("scheduler:queue", build=channel_args()),
    Route(
        "scheduler:queue_action",
        "post",
        rule("can_publish"),
        lambda world, member: ({"pk": world.channel.pk, "action": "shuffle"}, {}, {}),
    ),
    Route(
        "scheduler:queue_action",
        "post",
        rule("can_manage_channels"),
        lambda world, member: ({"pk": world.channel.pk, "action": "resume"}, {}, {}),
    ),
    Route("scheduler:schedule", build=channel_args()),
    Route("scheduler:schedule", "post", rule("can_manage_channels"), channel_args()),
    Route("scheduler:edit_post", allowed=rule("can_change_post", "post"), build=post_args),
    Route("scheduler:duplicate_post", "post", rule("can_compose"), post_args),
    Route(
        "scheduler:reschedule_post",
        "post",
        rule("can_change_post", "post"),
        fresh_post_args({"scheduled_at": "2031-01-01T09:00"}),
    ),
    Route("scheduler:share_post_now", "post", rule("can_publish"), fresh_post_args()),
    Route(
        "scheduler:bulk_action",
        "post",
        rule("can_publish"),
        lambda world, member: ({}, {"post": world.post.pk, "action": "retry"}, {}),
    ),
    Route("scheduler:compose_check", "post", rule("can_compose")),
    Route("scheduler:compose_autosave", "post", rule("can_compose")),
    Route("scheduler:upload_media", "post", rule("can_compose")),
    Route("scheduler:media_file", build=lambda world, member: ({"pk": world.media.pk}, {}, {})),
    Route("scheduler:link_card"),
    Route("accounts:api_tokens"),
    Route("accounts:revoke_api_token", "post", build=own_token),
    Route(
        "accounts:switch_workspace",
        "post",
        build=lambda world, member: ({}, {"workspace": member.workspace_id}, {}),
    ),
    Route("accounts:members"),
    Route(
        "accounts:members",
        "post",
        rule("can_manage_members"),
        lambda world, member: ({}, {"email": "new@example.com", "role": "viewer"}, {}),
    ),
    Route("accounts:change_role", "post", changes_member, target_member({"role": "viewer"})),
    Route("accounts:remove_member", "post", rule("can_change_member", "target"), target_member({})),
    Route("accounts:leave", "post"),
    Route("accounts:invitation_action", "post", rule("can_manage_members"), invitation),
    Route("accounts:account"),
    Route("accounts:password_change"),
    Route("accounts:password_changed"),
    Route("accounts:new_workspace"),
]


def api(name: str, method: str = "get", allowed: Rule | None = None, build: Any = None) -> Route:
    return Route(
        name, method, allowed or rule(None), build or (lambda w, m: ({}, {}, {})), api=True
    )


def api_post(world: World, member: Membership) -> Any:
    return {"pk": world.post.pk}, {"tags": ["walk"]}, {"post": world.post}


def media_args(world: World, member: Membership) -> Any:
    return {"pk": world.media.pk}, {"alt_text": "new"}, {"media": world.media}


def fresh_webhook(world: World, member: Membership) -> Any:
    webhook, _ = create_webhook(
        world.members[Role.OWNER], url="http://127.0.0.1:9/h", events=["delivery.failed"]
    )
    return {"pk": webhook.pk}, {}, {}


def some_webhook(world: World, member: Membership) -> Any:
    return {"pk": Webhook.objects.first().pk}, {}, {}  # type: ignore[union-attr]


def fresh_channel(world: World, member: Membership) -> Any:
    channel = Channel.objects.create(
        workspace=world.channel.workspace,
        network="mastodon",
        server_url="http://127.0.0.1:9",
        remote_id=f"r{Channel.objects.count()}",
        handle="@spare@127.0.0.1",
    )
    return {"pk": channel.pk}, {}, {}


API_ROUTES = [
    api("api:me"),
    api("api:channels"),
    api(
        "api:channels",
        "post",
        rule("can_manage_channels"),
        lambda w, m: ({}, {"network": "nowhere"}, {}),
    ),
    api("api:channel", build=channel_args()),
    api("api:channel", "patch", rule("can_manage_channels"), channel_args({"name": "Main"})),
    api("api:channel", "delete", rule("can_manage_channels"), fresh_channel),
    api("api:schedule", build=channel_args()),
    api(
        "api:schedule",
        "put",
        rule("can_manage_channels"),
        channel_args({"timezone": "UTC", "slots": {"mon": ["09:00"]}}),
    ),
    api("api:queue", build=channel_args()),
    api("api:queue_reorder", "post", rule("can_publish"), channel_args({"delivery_ids": []})),
    api("api:queue_shuffle", "post", rule("can_publish"), channel_args()),
    api("api:media"),
    api("api:media", "post", rule("can_compose")),
    api("api:media_item", build=media_args),
    api("api:media_item", "patch", rule("can_change_media", "media"), media_args),
    api("api:posts"),
    api("api:posts", "post", rule("can_compose"), lambda w, m: ({}, {"when": "now"}, {})),
    api("api:post", build=post_args),
    api("api:post", "patch", rule("can_change_post", "post"), api_post),
    api("api:post", "delete", rule("can_cancel", "post"), fresh_post_args()),
    api("api:share_now", "post", rule("can_publish"), fresh_post_args()),
    api("api:approve", "post", rule("can_approve"), fresh_post_args()),
    api("api:reject", "post", rule("can_approve"), fresh_post_args({"reason": "no"})),
    api("api:comments", build=post_args),
    api("api:comments", "post", rule("can_comment"), fresh_post_args({"text": "hi"})),
    api("api:activity"),
    api("api:notifications"),
    api("api:notifications_read", "post"),
    api("api:delivery", build=delivery_args),
    api("api:delivery_retry", "post", rule("can_publish"), delivery_args),
    api("api:webhooks"),
    api(
        "api:webhooks",
        "post",
        rule("can_manage_channels"),
        lambda w, m: ({}, {"url": "https://192.0.2.1/h", "events": ["delivery.failed"]}, {}),
    ),
    api("api:webhook", build=some_webhook),
    api("api:webhook", "delete", rule("can_manage_channels"), fresh_webhook),
    api("api:webhook_deliveries", build=some_webhook),
]


@pytest.fixture
def world(workspace: Any, membership: Membership, mastodon_channel: Channel) -> World:
    members = {Role.OWNER: membership}
    for role in ROLES[:-1]:
        members[role] = add_member(workspace, f"{role}@example.com", role)
    post = schedule(
        members[Role.CONTRIBUTOR],
        [mastodon_channel],
        "Review me",
        at=timezone.now() + timedelta(days=1),
    )
    media = upload_media(members[Role.CONTRIBUTOR], alt_text="A chart")
    part = post.parts.get()
    part.media.add(media, through_defaults={"position": 0})
    create_webhook(membership, url="http://127.0.0.1:9/hook", events=["delivery.failed"])
    return World(members, mastodon_channel, post, media)


def _request(route: Route, member: Membership, kwargs: dict[str, Any], data: dict[str, Any]) -> Any:
    url = reverse(route.name, kwargs=kwargs)
    if route.api:
        client = bearer_client(member)
        return getattr(client, route.method)(url, data, format="json")
    client = Client()
    client.force_login(member.user)
    client.post(reverse("accounts:switch_workspace"), {"workspace": member.workspace_id})
    return getattr(client, route.method)(url, data)


@pytest.mark.parametrize("route", WEB + API_ROUTES, ids=lambda r: f"{r.method.upper()} {r.name}")
def test_each_role_gets_what_its_membership_rule_allows(route: Route, world: World) -> None:
    outcomes = []
    for role in ROLES:
        member = Membership.objects.select_related("user", "workspace").get(
            pk=world.members[role].pk
        )
        kwargs, data, subjects = route.build(world, member)
        allowed = route.allowed(member, world, subjects)
        moving = route.name == "scheduler:calendar_move"
        due_before = Delivery.objects.get(post=subjects["post"]).due_at if moving else None
        response = _request(route, member, kwargs, data)
        refused = response.status_code == 403
        if moving:  # the calendar shows a refusal as a message: did the post move?
            refused = Delivery.objects.get(post=subjects["post"]).due_at == due_before
        outcomes.append((role, allowed, response.status_code))
        assert refused != allowed, (
            f"{route.method.upper()} {route.name} as {role}: rule says "
            f"{'allowed' if allowed else 'refused'}, answered {response.status_code}"
        )
        assert response.status_code not in (401, 404, 500), outcomes


def _named_routes(patterns: list[Any], namespace: str = "") -> set[str]:
    names: set[str] = set()
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = (
                f"{namespace}:{pattern.namespace}"
                if namespace and pattern.namespace
                else (pattern.namespace or namespace)
            )
            if inner != "admin":
                names |= _named_routes(pattern.url_patterns, inner)
        elif isinstance(pattern, URLPattern):
            names.add(f"{namespace}:{pattern.name}" if namespace else str(pattern.name))
    return names


def test_every_page_and_endpoint_is_walked() -> None:
    walked = {route.name for route in WEB + API_ROUTES}
    missing = _named_routes(get_resolver().url_patterns) - walked - PUBLIC
    assert not missing, f"add these to ROUTES in tests/test_roles.py: {sorted(missing)}"


def test_a_removed_member_is_refused_everywhere(world: World) -> None:
    editor = world.members[Role.EDITOR]
    api_client = bearer_client(editor)
    web = Client()
    web.force_login(editor.user)
    Membership.objects.filter(pk=editor.pk).delete()

    assert api_client.get(reverse("api:posts")).status_code == 401
    assert web.get(reverse("scheduler:post_detail", args=[world.post.pk])).status_code == 404
    assert ApiToken.objects.filter(user=editor.user).exists()
    assert User.objects.filter(pk=editor.user_id).exists()
