from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.routers import SimpleRouter

from accounts.api import AccountViewSet, MemberViewSet
from broadcasts.api import BroadcastViewSet
from contacts.api import ContactViewSet, TagViewSet
from contacts.api_fields import CustomFieldViewSet
from conversations.api import MessageViewSet
from conversations.api_start import ConversationStartViewSet
from conversations.api_templates import ConversationScheduledViewSet, MessageTemplateViewSet, ScheduledMessageViewSet
from hooks.api import WebhookDeliveryViewSet, WebhookSubscriptionViewSet
from routing.api import RoutingRuleViewSet, TeamViewSet

router = SimpleRouter()
router.register("accounts", AccountViewSet, basename="api-account")
router.register("contacts", ContactViewSet, basename="api-contact")
router.register("tags", TagViewSet, basename="api-tag")
router.register("custom-fields", CustomFieldViewSet, basename="api-custom-field")
router.register("conversations", ConversationStartViewSet, basename="api-conversation")  # + create: start one
router.register("messages", MessageViewSet, basename="api-message")
router.register("templates", MessageTemplateViewSet, basename="api-template")
router.register("scheduled-messages", ScheduledMessageViewSet, basename="api-scheduled-message")
router.register("routing-rules", RoutingRuleViewSet, basename="api-routing-rule")
router.register("teams", TeamViewSet, basename="api-team")
router.register("users", MemberViewSet, basename="api-user")
router.register("broadcasts", BroadcastViewSet, basename="api-broadcast")
router.register("webhooks", WebhookSubscriptionViewSet, basename="api-webhook")
router.register("webhook-deliveries", WebhookDeliveryViewSet, basename="api-webhook-delivery")

@csrf_exempt  # token-authenticated API: no session, no CSRF page
def api_not_found(request, *args, **kwargs):
    """Any other address under /api/v1/: the API's own error body, not the HTML 404 page."""
    return JsonResponse({"detail": "No such API endpoint (see /api/v1/docs/).", "code": "not_found"}, status=404)


urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(permission_classes=[], authentication_classes=[]), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema", permission_classes=[], authentication_classes=[]), name="api-docs"),
    path("conversations/<int:conversation_pk>/scheduled/",
         ConversationScheduledViewSet.as_view({"get": "list", "post": "create"}), name="api-conversation-scheduled"),
    *router.urls,
    re_path(r"", api_not_found),
]
