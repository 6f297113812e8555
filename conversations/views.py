import base64
import binascii
import threading

import httpx
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRedirect

from accounts.models import Account, Membership
from accounts.providers import get_provider
from accounts.tenancy import get_for_location, location_required
from contacts.models import Tag
from conversations import actions
from conversations import selectors
from conversations import snooze
from conversations import timeline
from conversations import uploads
from conversations.composer import composer_context
from conversations.models import Conversation, Message
from conversations.reactions import message_react
from conversations.services import message_retry
from whatsnap import guarded_fetch
from whatsnap.errors import NOT_A_MEMBER, ApplicationError
from whatsnap.params import id_param

PAGE_SIZE = 30


@location_required
def home(request):
    return redirect("inbox")


ALL_HIDDEN = "Agents of this location see their own and unassigned conversations: here is Mine."


def _sees_all(request) -> bool:
    """Admins always; agents when the location lets them (Location.agents_see_all)."""
    return _is_admin(request) or request.location.agents_see_all


def _views(request):
    return [(key, label) for key, label in selectors.VIEWS if key != "all" or _sees_all(request)]


def _filters(request):
    """The list's filters. Agents start on Mine, admins on All; an agent asking for All where
    the location does not allow it gets Mine, told why (the server decides, not the tabs)."""
    default = "all" if _is_admin(request) else "mine"
    view = request.GET.get("view") or default
    note = ""
    if view not in dict(selectors.VIEWS):
        view = default
    if view == "all" and not _sees_all(request):
        view, note = "mine", ALL_HIDDEN
    return {
        "view": view,
        "view_note": note,
        "account_id": id_param(request.GET.get("account")),
        "status": request.GET.get("status", ""),
        "query": request.GET.get("q", "").strip(),
        "tag_id": id_param(request.GET.get("tag")),
    }


def _querystring(request, view: str, *, first_page: bool = False) -> str:
    """The list's query as shown (the view it really shows), without the open conversation."""
    query = request.GET.copy()
    query.pop("current", None)
    if first_page:
        query.pop("page", None)
    query["view"] = view
    return query.urlencode()


def _list_context(request, current=None):
    filters = _filters(request)
    note = filters.pop("view_note")
    qs = selectors.conversations_for(location=request.location, user=request.user, **filters)
    page = selectors.Page(qs, request.GET.get("page"), PAGE_SIZE)
    unread = selectors.unread_by_view(location=request.location, user=request.user)
    tabs = [{"key": key, "label": label, "unread": unread[key], "query": _querystring(request, key, first_page=True)}
            for key, label in _views(request)]
    return {"page": page, "filters": filters, "view_note": note, "tabs": tabs,
            "querystring": _querystring(request, filters["view"]), "conversation": current}


def _page_context(request, conversation=None):
    ctx = _list_context(request, conversation)
    ctx.update(
        accounts=Account.objects.filter(location=request.location, archived_at__isnull=True),
        tags=Tag.objects.filter(location=request.location),
        statuses=Conversation.Status.choices,
    )
    if conversation is not None:
        ctx.update(_thread_context(request, conversation), snooze_menu=snooze.menu())
    return ctx


def _thread_context(request, conversation, **extra):
    return {
        "conversation": conversation,
        **_thread_page(request, conversation),
        "panel": selectors.contact_panel(conversation),
        **composer_context(request, conversation),  # templates for `/`, scheduled replies
        "members": actions.assignable_users(request.location),
        **extra,
    }


def _conversation(request, pk):
    return get_for_location(Conversation.objects.select_related("contact", "account", "assignee"), request.location, pk=pk)


@location_required
def inbox(request):
    return render(request, "conversations/inbox.html", _page_context(request))


@location_required
def inbox_list(request):
    current = id_param(request.GET.get("current"))
    conversation = Conversation.objects.filter(location=request.location, pk=current).first() if current else None
    return render(request, "conversations/_list.html", _list_context(request, conversation))


@location_required
def conversation_detail(request, pk):
    conversation = _conversation(request, pk)
    actions.conversation_mark_read(conversation=conversation)
    return render(request, "conversations/inbox.html", _page_context(request, conversation))


def _is_admin(request) -> bool:
    return request.membership.role == Membership.Role.ADMIN


def _thread_page(request, conversation, before: int | None = None) -> dict:
    """A page of the thread; admins also see deleted messages' text and edits' earlier texts."""
    return timeline.thread(conversation, before=before, admin=_is_admin(request))


@location_required
def conversation_thread(request, pk):
    """The thread (live refresh), or with ?before=<message id> the page of older messages."""
    conversation = _conversation(request, pk)
    before = id_param(request.GET.get("before"))
    if before:
        return render(request, "conversations/_older.html", {"conversation": conversation, **_thread_page(request, conversation, before)})
    actions.conversation_mark_read(conversation=conversation)  # it is open on the agent's screen
    return render(request, "conversations/_thread.html", {"conversation": conversation, **_thread_page(request, conversation)})


@location_required
def conversation_header(request, pk):
    """The thread's title and actions (status, snooze), refreshed live."""
    return render(request, "conversations/_header.html", {"conversation": _conversation(request, pk), "snooze_menu": snooze.menu(),
                                                          "querystring": _querystring(request, _filters(request)["view"])})


@location_required
def conversation_panel(request, pk):
    conversation = _conversation(request, pk)
    return render(request, "conversations/_panel.html", _thread_context(request, conversation))


@require_POST
@location_required
def conversation_reply(request, pk):
    conversation = _conversation(request, pk)
    text = request.POST.get("text", "")
    reply_to = _quoted(request, conversation)
    error = None
    try:
        if request.POST.get("mode") == "note":
            uploads.note_send(request, conversation=conversation, text=text, author=request.user)
        else:
            account = None
            if request.POST.get("account"):
                account = get_for_location(Account.objects.all(), request.location, pk=request.POST["account"])
            sent = uploads.reply_send(request, conversation=conversation, text=text, author=request.user, account=account,
                                      reply_to=reply_to)  # with the composer's attachments
            if sent.conversation_id != conversation.pk:
                # sent through another of the contact's accounts: that account's thread holds it
                target = reverse("conversation", kwargs={"pk": sent.conversation_id})
                return HttpResponseClientRedirect(target) if request.htmx else redirect(target)
    except ApplicationError as exc:
        error = exc.message
    ctx = _thread_context(request, conversation, error=error, draft=text if error else "", replying_to=reply_to if error else None)
    if request.htmx:
        return render(request, "conversations/_thread_and_composer.html", ctx)
    return redirect("conversation", pk=pk)


def _quoted(request, conversation):
    """The message a reply quotes (the composer's reply_to): one of this conversation's, else 404."""
    wanted = request.POST.get("reply_to", "").strip()
    if not wanted:
        return None
    return get_for_location(Message.objects.filter(conversation=conversation), request.location, pk=id_param(wanted) or 0)


@require_POST
@location_required
def message_react_view(request, pk):
    """The inbox's reaction picker: the account's reaction on a message ('' takes it back)."""
    message = get_for_location(Message.objects.select_related("account", "conversation__contact", "conversation__account"),
                               request.location, pk=pk)
    error = None
    try:
        message_react(message=message, emoji=request.POST.get("emoji", ""), author=request.user)
    except ApplicationError as exc:
        error = exc.message
    conversation = message.conversation
    if request.htmx:
        return render(request, "conversations/_thread.html", {"conversation": conversation, "thread_error": error,
                                                              **_thread_page(request, conversation)})
    if error:
        messages.error(request, error)
    return redirect("conversation", pk=conversation.pk)


@require_POST
@location_required
def conversation_action(request, pk):
    """Assign / unassign / resolve / reopen / pending / snooze / mark unread."""
    conversation = _conversation(request, pk)
    # the snooze menu's buttons carry only their choice (1h, tomorrow, next_week, custom)
    action = request.POST.get("action") or ("snooze" if "snooze" in request.POST else "")
    try:
        if action == "assign":
            actions.conversation_assign(conversation=conversation, assignee=_assignee(request), actor=request.user, reason="manual")
        elif action in ("open", "resolved", "pending"):
            actions.conversation_set_status(conversation=conversation, status=action, actor=request.user)
        elif action == "snooze":
            until = snooze.snooze_until(request.POST.get("snooze", ""), request.POST.get("snooze_until", ""))
            actions.conversation_set_status(conversation=conversation, status="snoozed", actor=request.user, snooze_until=until)
        elif action == "unread":
            actions.conversation_mark_unread(conversation=conversation)
            return redirect("inbox")
        else:
            return HttpResponse("Unknown action.", status=400)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("conversation", pk=pk)


def _assignee(request):
    """The member picked in the form; blank unassigns. Anyone else is refused, not silently
    taken for 'nobody', with the one answer that names no one."""
    wanted = request.POST.get("assignee", "").strip()
    if not wanted:
        return None
    user = actions.assignable_users(request.location).filter(pk=id_param(wanted)).first() if id_param(wanted) else None
    if user is None:
        raise ApplicationError(NOT_A_MEMBER, field="assignee")
    return user


@require_POST
@location_required
def message_retry_view(request, pk):
    message = get_for_location(Message.objects.all(), request.location, pk=pk)
    try:
        message_retry(message=message)
    except ApplicationError as exc:
        messages.error(request, exc.message)
    return redirect("conversation", pk=message.conversation_id)


# Attachments: a photo, a voice note or a short video. The deadline covers the whole
# download, the agent's browser reading it included. A relay holds one of the process's
# WEB_THREADS until it ends, so at most half of them relay at once (a thread full of photos
# waits a moment for a turn): a slow upstream, or many, can never take the threads every
# page, API call and webhook of every tenant needs.
MEDIA_LIMITS = guarded_fetch.Limits(connect=5.0, total=20.0, max_bytes=25 * 1024 * 1024)
MEDIA_RELAYS = threading.BoundedSemaphore(max(1, settings.WEB_THREADS // 2) if settings.WEB_THREADS else 16)
MEDIA_TURN_WAIT = 3.0  # seconds a request waits for a free relay before it is told to retry
MEDIA_CSP = "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; sandbox"


@location_required
def message_media(request, pk, index: int):
    """An attachment of a message, fetched from its backend with the account's credentials
    (Twilio media auth, the Mac's BlueBubbles server) so agents never see those, or decoded
    from the webhook's inline copy. Only members of the message's location reach it; the
    fetch goes through the guard (an attachment URL is user-supplied)."""
    message = get_for_location(Message.objects.select_related("account"), request.location, pk=pk)
    if not 0 <= index < len(message.media or []):
        raise Http404
    item = message.media[index]
    content_type = item.get("content_type") or "application/octet-stream"
    url = item.get("url") or ""
    if url.startswith("data:"):
        response = _inline_media(url, content_type)
    else:
        response = _fetched_media(get_provider(message.account.backend).media_request(message.account, item), content_type)
    if response.status_code == 200:
        _attachment_headers(response, content_type, item.get("filename") or f"attachment-{message.pk}-{index}")
    return response


def _inline_media(url: str, content_type: str) -> HttpResponse:
    header, _, data = url.partition(",")
    try:
        body = base64.b64decode(data, validate=True) if header.endswith(";base64") else data.encode()
    except (binascii.Error, ValueError):
        raise Http404 from None
    return HttpResponse(body, content_type=content_type)


def _fetched_media(spec: dict | None, content_type: str) -> HttpResponse:
    if spec is None:
        raise Http404
    if not MEDIA_RELAYS.acquire(timeout=MEDIA_TURN_WAIT):
        response = HttpResponse("Many attachments are loading right now; try again in a moment.", status=503, content_type="text/plain")
        response["Retry-After"] = "5"
        return response
    try:
        upstream = guarded_fetch.open_stream("GET", guarded_fetch.Target(**spec), limits=MEDIA_LIMITS)
    except (guarded_fetch.FetchError, httpx.HTTPError) as exc:
        MEDIA_RELAYS.release()
        if isinstance(exc, httpx.HTTPError):
            return _media_error(f"The attachment could not be fetched: the backend did not answer ({type(exc).__name__}).")
        return _media_error(f"The attachment could not be fetched: {exc}")
    if upstream.status_code != 200:
        _Relay(upstream).close()
        return _media_error(f"The backend answered {upstream.status_code} for this attachment (it may have expired).")
    return StreamingHttpResponse(_Relay(upstream), content_type=upstream.headers.get("content-type") or content_type)


class _Relay:
    """The upstream body as it arrives (past the size cap or the deadline it stops). Django
    calls close() when the response ends, read or not: that frees the relay's slot."""

    def __init__(self, upstream):
        self.upstream, self.closed = upstream, False

    def __iter__(self):
        try:
            yield from self.upstream.chunks()
        except (guarded_fetch.FetchError, httpx.HTTPError):
            return

    def close(self):
        if not self.closed:
            self.closed = True
            self.upstream.close()
            MEDIA_RELAYS.release()


def _media_error(reason: str) -> HttpResponse:
    # A short reason of ours, never the upstream's body (which could be anything it serves).
    return HttpResponse(reason, status=502, content_type="text/plain")


def _attachment_headers(response: HttpResponse, content_type: str, filename: str) -> None:
    disposition = "inline" if content_type.startswith(("image/", "audio/", "video/")) else "attachment"
    response["Content-Disposition"] = f'{disposition}; filename="{filename.replace(chr(34), "")}"'
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = MEDIA_CSP
    response["Cache-Control"] = "private, max-age=3600"
