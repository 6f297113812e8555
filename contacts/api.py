from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets

from contacts.models import Contact, ContactAccount, Tag
from contacts.phones import normalise_sender


class ContactSerializer(serializers.ModelSerializer):
    tags = serializers.SerializerMethodField()
    platforms = serializers.SerializerMethodField()
    accounts = serializers.SerializerMethodField()

    class Meta:
        model = Contact
        fields = ["id", "phone", "phone_is_e164", "name", "kind", "tags", "platforms", "accounts", "opted_out", "assignee", "created_at"]

    def get_tags(self, obj) -> list[str]:
        return sorted(t.name for t in obj.tags.all())

    def get_platforms(self, obj) -> list[str]:
        return sorted({link.platform for link in obj.account_links.all()})

    def get_accounts(self, obj) -> list[int]:
        return sorted(link.account_id for link in obj.account_links.all())


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("phone", str, description="Phone number (normalised to E.164)"),
            OpenApiParameter("tag", str, description="Tag name"),
            OpenApiParameter("account", int, description="Account id the contact wrote through"),
        ]
    )
)
class ContactViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ContactSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no token
            return Contact.objects.none()
        qs = Contact.objects.filter(location=self.request.auth.location).prefetch_related(
            Prefetch("tags", queryset=Tag.objects.only("id", "name")),
            Prefetch("account_links", queryset=ContactAccount.objects.only("id", "contact_id", "account_id", "platform")),
        )
        params = self.request.query_params
        if params.get("phone"):
            qs = qs.filter(phone=normalise_sender(params["phone"], default_region="US").value)
        if params.get("tag"):
            qs = qs.filter(tags__name=params["tag"])
        if params.get("account"):
            qs = qs.filter(account_links__account_id=params["account"])
        return qs.order_by("-id")
