from functools import partial

from django import forms
from django.contrib import admin
from django.db import transaction
from django.utils import timezone

from accounts.models import Membership
from conversations.actions import conversation_assign, conversation_set_status
from conversations.merge_fields import merge_fields_check
from conversations.models import Conversation, ConversationEvent, InboundEvent, Message, MessageTemplate, ScheduledMessage
from conversations.scheduling import scheduled_message_cancel
from conversations.tasks import inbound_event_requeue
from conversations.unfiled import unfiled_rerun_selected
from whatsnap.errors import ApplicationError
from whatsnap.admin_scoping import LocationScopedAdmin, LocationScopedInline


class ConversationAdminForm(forms.ModelForm):
    class Meta:
        model = Conversation
        fields = "__all__"

    def clean(self):
        data = super().clean()
        assignee, location_id = data.get("assignee"), self.instance.location_id
        if assignee is not None and not Membership.objects.filter(user=assignee, location_id=location_id).exists():
            self.add_error("assignee", f"{assignee} is not a member of this conversation's location.")
        if data.get("status") == Conversation.Status.SNOOZED:
            until = data.get("snoozed_until")
            if until is None or until <= timezone.now():
                self.add_error("snoozed_until", "A snoozed conversation needs a time in the future.")
        return data


class ConversationEventInline(LocationScopedInline, admin.TabularInline):
    model = ConversationEvent
    extra = 0
    can_delete = False
    readonly_fields = ["at", "kind", "actor", "from_value", "to_value", "reason"]

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Conversation)
class ConversationAdmin(LocationScopedAdmin, admin.ModelAdmin):
    location_field = "location"
    form = ConversationAdminForm
    list_display = ["contact", "account", "status", "assignee", "last_message_at", "unread_count"]
    list_filter = ["status", "account__location", "account"]
    search_fields = ["contact__phone", "contact__name"]
    raw_id_fields = ["contact"]
    fields = ["contact", "account", "status", "snoozed_until", "assignee"]
    readonly_fields = ["contact", "account"]
    inlines = [ConversationEventInline]
    actions = ["unassign"]

    def has_add_permission(self, request):
        return False  # conversations open when someone writes in, or from the inbox

    def save_model(self, request, obj, form, change):
        """Assignment and status go through the inbox's services: history row, live event,
        outgoing webhook and GHL sync, exactly as from the inbox."""
        current = Conversation.objects.get(pk=obj.pk)
        with transaction.atomic():
            if "assignee" in form.changed_data:
                conversation_assign(conversation=current, assignee=obj.assignee, actor=request.user, reason="admin")
            if {"status", "snoozed_until"} & set(form.changed_data):
                conversation_set_status(conversation=current, status=obj.status, actor=request.user,
                                        snooze_until=obj.snoozed_until if obj.status == Conversation.Status.SNOOZED else None)

    @admin.action(description="Unassign selected conversations")
    def unassign(self, request, queryset):
        for conversation in queryset:
            conversation_assign(conversation=conversation, assignee=None, actor=request.user, reason="admin")


@admin.register(Message)
class MessageAdmin(LocationScopedAdmin, admin.ModelAdmin):
    location_field = "location"
    list_display = ["id", "conversation", "direction", "status", "sent_at", "provider_message_id"]
    list_filter = ["direction", "status", "account"]
    search_fields = ["provider_message_id", "text"]
    raw_id_fields = ["conversation", "sender_contact"]


class UnfiledReasonFilter(admin.SimpleListFilter):
    """The reasons of unfiled events, as the rows this user may see give them."""
    title = "reason (unfiled)"
    parameter_name = "reason"

    def lookups(self, request, model_admin):
        rows = model_admin.get_queryset(request).filter(status=InboundEvent.Status.UNFILED)
        reasons = rows.order_by("error").values_list("error", flat=True).distinct()[:50]
        return [(reason, reason[:80]) for reason in reasons]

    def queryset(self, request, queryset):
        value = self.value()
        return queryset if value is None else queryset.filter(status=InboundEvent.Status.UNFILED, error=value)


@admin.register(InboundEvent)
class InboundEventAdmin(LocationScopedAdmin, admin.ModelAdmin):
    location_field = "account__location"
    list_display = ["id", "account", "kind", "dedupe_key", "status", "error_excerpt", "attempts", "received_at", "processed_at"]
    list_filter = ["status", "kind", UnfiledReasonFilter, "account"]
    search_fields = ["dedupe_key"]
    readonly_fields = [f.name for f in InboundEvent._meta.fields]
    actions = ["requeue", "rerun_unfiled"]

    @admin.display(description="reason / error")
    def error_excerpt(self, obj):
        return obj.error[:100]

    @admin.action(description="Process again (pending/failed only)")
    def requeue(self, request, queryset):
        for event in queryset.filter(status__in=[InboundEvent.Status.PENDING, InboundEvent.Status.FAILED]):
            InboundEvent.objects.filter(pk=event.pk).update(status=InboundEvent.Status.PENDING, attempts=0)
            transaction.on_commit(partial(inbound_event_requeue, event.pk))

    @admin.action(description="Re-run selected unfiled events")
    def rerun_unfiled(self, request, queryset):
        self.message_user(request, unfiled_rerun_selected(queryset=queryset).summary())


class MessageTemplateAdminForm(forms.ModelForm):
    class Meta:
        model = MessageTemplate
        fields = ["location", "name", "shortcut", "body"]

    def clean_body(self):
        body = self.cleaned_data.get("body", "")
        try:
            merge_fields_check(body, field="body")
        except ApplicationError as exc:
            raise forms.ValidationError(exc.message) from None
        return body


@admin.register(MessageTemplate)
class MessageTemplateAdmin(LocationScopedAdmin, admin.ModelAdmin):
    """Templates (once canned responses): the same rows the Templates page manages."""
    location_field = "location"
    form = MessageTemplateAdminForm
    list_display = ["name", "shortcut", "location", "body"]
    list_filter = ["location"]
    search_fields = ["name", "shortcut", "body"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        obj.updated_at = timezone.now()
        super().save_model(request, obj, form, change)


@admin.register(ScheduledMessage)
class ScheduledMessageAdmin(LocationScopedAdmin, admin.ModelAdmin):
    """Read only: they are written from the inbox and the API (their task is scheduled there)."""
    location_field = "location"
    list_display = ["id", "conversation", "account", "send_at", "status", "error", "created_by"]
    list_filter = ["status", "account"]
    search_fields = ["text"]
    readonly_fields = [f.name for f in ScheduledMessage._meta.fields]
    actions = ["cancel"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Cancel selected (those not sent yet)")
    def cancel(self, request, queryset):
        cancelled = 0
        for scheduled in queryset.filter(status__in=[ScheduledMessage.Status.PENDING, ScheduledMessage.Status.FAILED]):
            scheduled_message_cancel(scheduled=scheduled)
            cancelled += 1
        self.message_user(request, f"{cancelled} scheduled message(s) cancelled.")
