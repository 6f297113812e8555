from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets

from conversations.models import Message


class MessageSerializer(serializers.ModelSerializer):
    contact = serializers.IntegerField(source="conversation.contact_id", read_only=True)

    class Meta:
        model = Message
        fields = ["id", "conversation", "contact", "account", "direction", "text", "media", "status", "error",
                  "provider_message_id", "sent_at", "created_at"]


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("direction", str, enum=["inbound", "outbound"]),
            OpenApiParameter("conversation", int),
            OpenApiParameter("status", str),
        ]
    )
)
class MessageViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = MessageSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no token
            return Message.objects.none()
        qs = Message.objects.filter(location=self.request.auth.location).select_related("conversation")
        params = self.request.query_params
        if params.get("direction"):
            qs = qs.filter(direction=params["direction"])
        if params.get("conversation"):
            qs = qs.filter(conversation_id=params["conversation"])
        if params.get("status"):
            qs = qs.filter(status=params["status"])
        token = self.request.auth
        if token.user_id and not token.is_admin:
            qs = qs.filter(conversation__assignee_id=token.user_id)
        return qs.order_by("-id")
