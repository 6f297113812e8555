from django.core.paginator import Paginator
from django.db import transaction
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.models import Account
from conversations import selectors
from conversations.models import Conversation, Message
from conversations.services import message_retry, message_send
from whatsnap.errors import ApplicationError
from whatsnap.tenancy import get_for_location, location_required

PAGE_SIZE = 30


def _filters(request):
    return {
        "view": request.GET.get("view", "all"),
        "account_id": request.GET.get("account") or None,
        "status": request.GET.get("status", ""),
        "query": request.GET.get("q", "").strip(),
    }


def _list_context(request):
    filters = _filters(request)
    qs = selectors.conversations_for(location=request.location, user=request.user, **filters)
    page = Paginator(qs, PAGE_SIZE).get_page(request.GET.get("page"))
    return {"page": page, "filters": filters, "querystring": request.GET.urlencode()}


@location_required
def inbox(request):
    ctx = _list_context(request)
    ctx["accounts"] = Account.objects.filter(location=request.location, archived_at__isnull=True)
    ctx["statuses"] = Conversation.Status.choices
    return render(request, "conversations/inbox.html", ctx)


@location_required
def inbox_list(request):
    return render(request, "conversations/_list.html", _list_context(request))


def _conversation(request, pk):
    return get_for_location(Conversation.objects.select_related("contact", "account", "assignee"), request.location, pk=pk)


@location_required
def conversation_detail(request, pk):
    conversation = _conversation(request, pk)
    if conversation.unread_count:
        Conversation.objects.filter(pk=pk).update(unread_count=0)
    ctx = _list_context(request)
    ctx.update(conversation=conversation, messages=selectors.messages_of(conversation))
    ctx["accounts"] = Account.objects.filter(location=request.location, archived_at__isnull=True)
    ctx["statuses"] = Conversation.Status.choices
    return render(request, "conversations/inbox.html", ctx)


@location_required
def conversation_thread(request, pk):
    conversation = _conversation(request, pk)
    return render(request, "conversations/_thread.html", {"conversation": conversation, "messages": selectors.messages_of(conversation)})


@require_POST
@location_required
def conversation_reply(request, pk):
    conversation = _conversation(request, pk)
    error = None
    try:
        message_send(conversation=conversation, text=request.POST.get("text", ""), author=request.user)
    except ApplicationError as exc:
        error = exc.message
    ctx = {"conversation": conversation, "messages": selectors.messages_of(conversation), "error": error,
           "draft": request.POST.get("text", "") if error else ""}
    if request.htmx:
        return render(request, "conversations/_thread_and_composer.html", ctx)
    return redirect("conversation", pk=pk)


@require_POST
@location_required
def conversation_set_status(request, pk):
    conversation = _conversation(request, pk)
    status = request.POST.get("status")
    if status in (Conversation.Status.OPEN, Conversation.Status.RESOLVED, Conversation.Status.PENDING):
        from whatsnap.live import publish_on_commit

        with transaction.atomic():
            Conversation.objects.filter(pk=pk).update(status=status)
            publish_on_commit(location_id=conversation.location_id, event="conversation.status",
                              topics=["inbox", f"conversation:{pk}"], data={"conversation": pk, "status": status})
    return redirect("conversation", pk=pk)


@require_POST
@location_required
def message_retry_view(request, pk):
    message = get_for_location(Message.objects.all(), request.location, pk=pk)
    try:
        message_retry(message=message)
    except ApplicationError:
        pass
    return redirect("conversation", pk=message.conversation_id)
