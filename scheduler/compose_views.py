"""The composer: write, check while typing, upload media, autosave, and save or schedule."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from datetime import datetime
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import formats, timezone
from django.views.decorators.http import require_POST

from accounts.models import Membership
from accounts.workspaces import current_membership

from . import compose, composer, queue
from . import media as media_flows
from .composer import ComposerForm
from .models import Channel, Media, Post, PostStatus
from .networks.bluesky.linkcard import fetch_link_card
from .overview import OverallStatus, overall_status
from .web import member_view

PART_NUMBER = re.compile(r"\bPart (\d+)\b")


def _zone(request: HttpRequest) -> str:
    return getattr(request.user, "timezone", "") or "UTC"


def _local(moment: datetime | None) -> str:
    if moment is None:
        return ""
    return formats.date_format(timezone.localtime(moment), "D j M Y, H:i T")


def _require_compose(membership: Membership) -> None:
    if not membership.can_compose:
        raise PermissionDenied("Viewers cannot write posts.")


@member_view
def compose_post(request: HttpRequest, membership: Membership) -> HttpResponse:
    """A new post; the last channels this user posted to are ticked."""
    _require_compose(membership)
    if request.method == "POST":
        return _submit(request, membership, None)
    form = ComposerForm(
        channels=_last_channels(membership), options={"language": _language(request)}
    )
    _prefill(membership, form, request)
    return _render(request, membership, form)


def _prefill(membership: Membership, form: ComposerForm, request: HttpRequest) -> None:
    """Links from the calendar and queue: ?channel=<id>&at=<local date-time> or &when=queue."""
    wanted = compose.form_ids(request.GET.getlist("channel"))
    if wanted:
        chosen = Channel.objects.for_workspace(membership.workspace).filter(pk__in=wanted)
        form.channels = list(chosen)
    if request.GET.get("at"):
        form.when, form.scheduled_at = "at", request.GET["at"][:16]
    elif request.GET.get("when") in composer.WHEN_VALUES:
        form.when = request.GET["when"]


@member_view
def edit_post(request: HttpRequest, membership: Membership, pk: int) -> HttpResponse:
    """The composer filled with a saved post; only what may still change is changed."""
    post = get_object_or_404(Post.objects.for_workspace(membership.workspace), pk=pk)
    if not membership.can_change_post(post):
        raise PermissionDenied("Contributors can change only their own posts; viewers none.")
    if request.method == "POST":
        return _submit(request, membership, post)
    return _render(request, membership, composer.form_from_post(post), post=post)


def _last_channels(membership: Membership) -> list[Channel]:
    last = Post.objects.for_workspace(membership.workspace).filter(author=membership.user).first()
    if last is None:
        return []
    return [d.channel for d in last.deliveries.select_related("channel").order_by("pk")]


def _language(request: HttpRequest) -> str:
    """The new post's language: the writer's default (account settings), else the browser's."""
    chosen = getattr(request.user, "language", "")
    if chosen:
        return str(chosen)
    header = request.headers.get("Accept-Language", "")
    first = header.split(",")[0].split(";")[0].strip()
    return first.split("-")[0].lower() if re.fullmatch(r"[A-Za-z]{2,3}(-\w+)?", first) else ""


def _render(
    request: HttpRequest,
    membership: Membership,
    form: ComposerForm,
    *,
    post: Post | None = None,
    errors: dict[str, list[str]] | None = None,
    status: int = 200,
) -> HttpResponse:
    errors = errors or {}
    channels = list(
        Channel.objects.for_workspace(membership.workspace).order_by("network", "handle")
    )
    deliveries = list(post.deliveries.select_related("channel")) if post else []
    _, unchanged = compose.what_can_change(deliveries)
    context = {
        "membership": membership,
        "form": form,
        "post": post,
        "editing_scheduled": post is not None and post.status != PostStatus.DRAFT,
        "channels": channels,
        "errors": errors,
        "part_errors": _part_errors(errors),
        "checks": composer.check_form(form) if form.channels else [],
        "limits_json": json.dumps(composer.limits_by_channel(channels)),
        "slots": _slots(form.channels),
        "unchanged": [(d, unchanged[d.pk]) for d in deliveries if d.pk in unchanged],
        "current_due": _local(min((d.due_at for d in deliveries if d.due_at), default=None)),
        "zone": _zone(request),
        "languages": LANGUAGES,
        "reply_controls": REPLY_CONTROLS,
        "max_upload": settings.MAX_UPLOAD_BYTES,
        # What the page clones for a new upload; the script fills in the real file.
        "template_media": {"pk": 0, "kind": "image", "alt_text": "", "mime_type": "", "size": 0},
    }
    return render(request, "scheduler/compose.html", context, status=status)


def _part_errors(errors: dict[str, list[str]]) -> dict[int, list[str]]:
    """Channel messages that name a part ("Part 2 is 512 characters…"), by part index."""
    found: dict[int, list[str]] = {}
    for key, messages_ in errors.items():
        if not key.isdigit():
            continue
        for text in messages_:
            match = PART_NUMBER.search(text)
            found.setdefault(int(match.group(1)) - 1 if match else 0, []).append(text)
    return found


def _slots(channels: list[Channel]) -> dict[int, dict[str, str]]:
    """Where "Add to queue" and "Share next" would put the post, per channel, in local time."""
    result = {}
    for channel in channels:
        free = queue.free_slots(channel, count=1)
        first = next(queue.slot_times(channel, after=timezone.now()), None)
        result[channel.pk] = {"queue": _local(free[0] if free else None), "next": _local(first)}
    return result


def _submit(request: HttpRequest, membership: Membership, post: Post | None) -> HttpResponse:
    form = composer.read_form(membership, request.POST)
    composer.persist_alt_texts(membership, form)
    target = post or _own_draft(membership, form.draft_id)
    try:
        saved = _save(membership, form, target, _zone(request))
    except compose.ComposeError as error:
        return _render(request, membership, form, post=post, errors=error.errors, status=400)
    except compose.PostNotEditable as error:
        errors = {"post": [str(error)]}
        return _render(request, membership, form, post=post, errors=errors, status=409)
    messages.success(request, describe_outcome(saved, form.when))
    return redirect("scheduler:post_detail", pk=saved.pk)


def _own_draft(membership: Membership, pk: int | None) -> Post | None:
    if pk is None:
        return None
    return (
        Post.objects.for_workspace(membership.workspace)
        .filter(pk=pk, status=PostStatus.DRAFT)
        .first()
    )


def _save(membership: Membership, form: ComposerForm, target: Post | None, zone: str) -> Post:
    at = compose.parse_local(form.scheduled_at, zone) if form.when == "at" else None
    timing = {} if form.when == "keep" else compose.timing(form.when, at)
    content: dict[str, Any] = {
        "parts": form.inputs(),
        "options": form.clean_options(),
        "tags": form.tag_list(),
    }
    if target is None and form.when != "draft":
        return compose.create_post(
            membership,
            channels=form.channels,
            overrides=form.override_inputs(),
            **content,
            **{"at": None, **timing},
        )
    if target is None or target.status == PostStatus.DRAFT:
        draft = compose.save_draft(
            membership, target, channels=form.channels, overrides=form.override_inputs(), **content
        )
        if form.when != "draft":
            _check_channels(form)
            compose.update_post(membership, draft, **timing)
        return draft
    overrides: dict[int, list[compose.PartInput] | None] = {
        d.channel_id: form.override_inputs().get(d.channel_id) for d in target.deliveries.all()
    }
    compose.update_post(membership, target, overrides=overrides, **content, **timing)
    return target


def _check_channels(form: ComposerForm) -> None:
    if not form.channels:
        raise compose.ComposeError({"channels": ["Choose at least one channel to publish to."]})


def describe_outcome(post: Post, when: str) -> str:
    """What actually happened, in words: saved, sent for approval, publishing, when and where."""
    status = overall_status(post)
    deliveries = list(post.deliveries.select_related("channel").order_by("due_at", "pk"))
    where = ", ".join(d.channel.handle for d in deliveries)
    count = f"{len(deliveries)} channel{'s' if len(deliveries) != 1 else ''}"
    if status == OverallStatus.DRAFT:
        return "Saved as a draft. Nothing is published until you choose when."
    if status == OverallStatus.PENDING_APPROVAL:
        return f"Sent for approval: it goes out to {count} once an editor approves it."
    if when == "now":
        return f"Publishing now to {count} ({where}). This page shows each channel as it goes out."
    if status == OverallStatus.QUEUED or when in ("queue", "next"):
        return (
            "Added to the queue: "
            + "; ".join(f"{d.channel.handle} at {_local(d.due_at)}" for d in deliveries)
            + "."
        )
    if status == OverallStatus.SCHEDULED:
        return f"Scheduled for {_local(deliveries[0].due_at)} on {count} ({where})."
    return f"Saved. The post is now {status.label.lower()}."


# -- the page's helpers: check while typing, autosave, upload, files, link cards ------------------
@require_POST
@member_view
def check(request: HttpRequest, membership: Membership) -> JsonResponse:
    """Counters, problems, previews and queue slots for what the composer holds right now."""
    _require_compose(membership)
    form = composer.read_form(membership, request.POST)
    checks = composer.check_form(form)
    split = {}
    for index, part in enumerate(form.parts):
        if any(c.counts[index].over for c in checks if not c.own_version and index < len(c.counts)):
            split[index] = composer.split_suggestion(form, part.text)
    previews = render_to_string(
        "scheduler/_previews.html", {"checks": checks, "zone": _zone(request)}, request=request
    )
    return JsonResponse(
        {
            "channels": [c.as_json() for c in checks],
            "split": split,
            "previews": previews,
            "slots": _slots(form.channels),
        }
    )


@require_POST
@member_view
def autosave(request: HttpRequest, membership: Membership) -> JsonResponse:
    """Save the composer as a draft (new or the one being written); never schedules anything."""
    _require_compose(membership)
    form = composer.read_form(membership, request.POST)
    composer.persist_alt_texts(membership, form)
    draft = _own_draft(membership, form.draft_id)
    if form.draft_id is not None and draft is None:
        return JsonResponse(
            {"saved": False, "reason": "This post is no longer a draft; it was not autosaved."},
            status=409,
        )
    try:
        draft = compose.save_draft(
            membership,
            draft,
            channels=form.channels,
            parts=form.inputs(),
            overrides=form.override_inputs(),
            options=form.clean_options(),
            tags=form.tag_list(),
        )
    except (compose.ComposeError, compose.PostNotEditable) as error:
        return JsonResponse({"saved": False, "reason": str(error)}, status=409)
    return JsonResponse(
        {
            "saved": True,
            "draft_id": draft.pk,
            "saved_at": _local(timezone.now()),
            "edit_url": reverse("scheduler:edit_post", args=[draft.pk]),
        }
    )


@require_POST
@member_view
def upload_media(request: HttpRequest, membership: Membership) -> JsonResponse:
    """Store one file for the composer; it stays usable however the post's save goes."""
    _require_compose(membership)
    upload = request.FILES.get("file")
    if upload is None:
        return JsonResponse({"error": "Choose a file to upload."}, status=400)
    try:
        item = media_flows.save_upload(membership, upload)
    except media_flows.MediaError as error:
        return JsonResponse({"error": f"{upload.name}: {error}"}, status=400)
    return JsonResponse(media_json(item), status=201)


def media_json(item: Media) -> dict[str, Any]:
    return {
        "id": item.pk,
        "kind": item.kind,
        "mime": item.mime_type,
        "size": item.size,
        "name": (item.file.name or "").rsplit("/", 1)[-1],
        "url": reverse("scheduler:media_file", args=[item.pk]),
        "alt": item.alt_text,
    }


@login_required
def media_file(request: HttpRequest, pk: int) -> FileResponse:
    """A workspace's uploaded file, for its members' thumbnails and previews."""
    workspace = current_membership(request).workspace
    item = get_object_or_404(Media.objects.for_workspace(workspace), pk=pk)
    response = FileResponse(item.file.open("rb"), content_type=item.mime_type)
    response["Cache-Control"] = "private, max-age=3600"
    return response


@member_view
def link_card(request: HttpRequest, membership: Membership) -> HttpResponse:
    """The link card Bluesky will attach for `url` (title, description, image), as HTML."""
    url = request.GET.get("url", "")
    key = f"herald:linkcard:{url[:500]}"
    card = cache.get(key)
    if card is None:
        found = fetch_link_card(url)  # never raises: no card is an empty card
        card = asdict(found) if found else {}
        cache.set(key, card, 3600)
    return render(request, "scheduler/_link_card.html", {"card": card, "url": url})


LANGUAGES = [
    ("en", "English"),
    ("de", "German · Deutsch"),
    ("fr", "French · Français"),
    ("es", "Spanish · Español"),
    ("it", "Italian · Italiano"),
    ("pt", "Portuguese · Português"),
    ("pt-BR", "Portuguese (Brazil)"),
    ("nl", "Dutch · Nederlands"),
    ("sv", "Swedish · Svenska"),
    ("da", "Danish · Dansk"),
    ("nb", "Norwegian · Norsk bokmål"),
    ("fi", "Finnish · Suomi"),
    ("pl", "Polish · Polski"),
    ("cs", "Czech · Čeština"),
    ("uk", "Ukrainian · Українська"),
    ("ru", "Russian · Русский"),
    ("tr", "Turkish · Türkçe"),
    ("el", "Greek · Ελληνικά"),
    ("ar", "Arabic · العربية"),
    ("he", "Hebrew · עברית"),
    ("fa", "Persian · فارسی"),
    ("hi", "Hindi · हिन्दी"),
    ("bn", "Bengali · বাংলা"),
    ("ja", "Japanese · 日本語"),
    ("ko", "Korean · 한국어"),
    ("zh", "Chinese · 中文"),
    ("zh-TW", "Chinese (Taiwan) · 繁體中文"),
    ("id", "Indonesian · Bahasa Indonesia"),
    ("vi", "Vietnamese · Tiếng Việt"),
    ("th", "Thai · ไทย"),
    ("ca", "Catalan · Català"),
    ("eu", "Basque · Euskara"),
    ("gl", "Galician · Galego"),
    ("ga", "Irish · Gaeilge"),
    ("cy", "Welsh · Cymraeg"),
    ("eo", "Esperanto"),
    ("la", "Latin"),
    ("hu", "Hungarian · Magyar"),
    ("ro", "Romanian · Română"),
]
REPLY_CONTROLS = [
    ("", "Account default"),
    ("everyone", "Everyone"),
    ("accounts_you_follow", "Accounts you follow"),
    ("mentioned_only", "Mentioned accounts only"),
    ("parent_post_author_only", "Only you (the thread's author)"),
    ("followers_only", "Your followers"),
]
