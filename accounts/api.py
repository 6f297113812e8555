from rest_framework import mixins, serializers, viewsets

from accounts.models import Account
from accounts.services import account_webhook_urls


class AccountSerializer(serializers.ModelSerializer):
    tag = serializers.SerializerMethodField()
    webhook_urls = serializers.SerializerMethodField()

    class Meta:
        model = Account
        fields = ["id", "name", "slug", "kind", "backend", "phone_number", "status", "last_error", "tag", "webhook_urls", "created_at"]

    def get_tag(self, obj) -> str | None:
        tag = getattr(obj, "tag", None)
        return tag.name if tag else None

    def get_webhook_urls(self, obj) -> dict[str, str]:
        return account_webhook_urls(obj)


class AccountViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = AccountSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no token
            return Account.objects.none()
        return Account.objects.filter(location=self.request.auth.location, archived_at__isnull=True).select_related("tag").order_by("-id")
