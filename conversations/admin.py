from django.contrib import admin

from conversations.models import Conversation, InboundEvent, Message


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["contact", "account", "status", "assignee", "last_message_at", "unread_count"]
    list_filter = ["status", "account__location", "account"]
    search_fields = ["contact__phone", "contact__name"]
    raw_id_fields = ["contact"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["id", "conversation", "direction", "status", "sent_at", "provider_message_id"]
    list_filter = ["direction", "status", "account"]
    search_fields = ["provider_message_id", "text"]
    raw_id_fields = ["conversation", "sender_contact"]


@admin.register(InboundEvent)
class InboundEventAdmin(admin.ModelAdmin):
    list_display = ["id", "account", "kind", "dedupe_key", "status", "attempts", "received_at", "processed_at"]
    list_filter = ["status", "kind", "account"]
    search_fields = ["dedupe_key"]
    readonly_fields = [f.name for f in InboundEvent._meta.fields]
    actions = ["requeue"]

    @admin.action(description="Process again (pending/failed only)")
    def requeue(self, request, queryset):
        from conversations.tasks import enqueue_inbound_event

        for event in queryset.exclude(status=InboundEvent.Status.DONE):
            InboundEvent.objects.filter(pk=event.pk).update(status=InboundEvent.Status.PENDING, attempts=0)
            enqueue_inbound_event(event.pk)


from conversations.models import CannedResponse, ConversationEvent  # noqa: E402


@admin.register(CannedResponse)
class CannedResponseAdmin(admin.ModelAdmin):
    list_display = ["shortcut", "location", "text"]
    list_filter = ["location"]
    search_fields = ["shortcut", "text"]


class ConversationEventInline(admin.TabularInline):
    model = ConversationEvent
    extra = 0
    can_delete = False
    readonly_fields = ["at", "kind", "actor", "from_value", "to_value", "reason"]

    def has_add_permission(self, request, obj=None):
        return False


ConversationAdmin.inlines = [ConversationEventInline]
ConversationAdmin.actions = ["unassign"]


def _unassign(modeladmin, request, queryset):
    from conversations.inbox import conversation_assign

    for conversation in queryset:
        conversation_assign(conversation=conversation, assignee=None, actor=request.user, reason="admin")


_unassign.short_description = "Unassign selected conversations"
ConversationAdmin.unassign = _unassign
