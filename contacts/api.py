"""/api/v1/contacts/ and /api/v1/tags/."""
from django.db import transaction
from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.decorators import action
from rest_framework.response import Response

from accounts.api_auth import HasLocationToken
from contacts.fields import apply_filters as apply_field_filters
from contacts.fields import clean_values, write_values
from contacts.models import Contact, ContactAccount, ContactFieldValue, Tag
from contacts.selectors import contacts_search, tags_with_counts
from contacts.services import contact_update, contact_upsert_from_inbound, tag_create, tag_delete, tag_merge, tag_rename
from whatsnap.api_base import AdminTokenForWrites, LocationObjectField, LocationViewSet, id_filter
from whatsnap.errors import ApplicationError
from whatsnap.phones import NormalisedSender, normalise_e164, normalise_sender

def tag_name_field(**kwargs):
    return serializers.CharField(max_length=100, **kwargs)


class ContactSerializer(serializers.ModelSerializer):
    tags = serializers.SerializerMethodField(help_text="Tag names")
    platforms = serializers.SerializerMethodField(help_text="Account kinds the contact has written through")
    accounts = serializers.SerializerMethodField(help_text="Ids of the accounts the contact has written through")
    custom_fields = serializers.SerializerMethodField(help_text="Custom field values by field key (filled-in fields only)")

    class Meta:
        model = Contact
        fields = ["id", "phone", "phone_is_e164", "name", "name_source", "kind", "tags", "platforms", "accounts",
                  "custom_fields", "opted_out", "assignee", "created_at", "updated_at"]

    def get_custom_fields(self, obj) -> dict[str, str]:
        return {v.field.key: v.value for v in obj.field_values.all()}

    def get_tags(self, obj) -> list[str]:
        return sorted(t.name for t in obj.tags.all())

    def get_platforms(self, obj) -> list[str]:
        return sorted({link.platform for link in obj.account_links.all()})

    def get_accounts(self, obj) -> list[int]:
        return sorted(link.account_id for link in obj.account_links.all())


class ContactCreateSerializer(serializers.Serializer):
    phone = serializers.CharField(max_length=40, help_text="International form, e.g. +14155550123")
    name = serializers.CharField(max_length=120, required=False, allow_blank=True)
    tags = serializers.ListField(child=tag_name_field(), required=False, max_length=100, help_text="Names of existing tags")
    custom_fields = serializers.DictField(child=serializers.CharField(allow_blank=True, max_length=600), required=False,
                                          help_text="Values by custom field key (GET /api/v1/custom-fields/); \"\" clears one")

    def validate_phone(self, value):
        try:
            return normalise_e164(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


class ContactUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=120, required=False, allow_blank=True,
                                 help_text="Set by a person: platforms never replace it")
    tags = serializers.ListField(child=tag_name_field(), required=False, max_length=100,
                                 help_text="The full set of tag names (existing tags)")
    custom_fields = serializers.DictField(child=serializers.CharField(allow_blank=True, max_length=600), required=False,
                                          help_text="Values by custom field key (GET /api/v1/custom-fields/); \"\" clears one")


class ContactTagSerializer(serializers.Serializer):
    tag = tag_name_field()


class ContactFilters(serializers.Serializer):
    phone = serializers.CharField(required=False, max_length=40, help_text="Phone number (normalised to E.164)")
    tag = serializers.CharField(required=False, max_length=100, help_text="Tag name")
    account = id_filter(help_text="Id of an account the contact wrote through")
    assignee = id_filter(help_text="User id of the contact's owner")
    q = serializers.CharField(required=False, max_length=100, help_text="Search name, phone and tags")


def _tag_ids(location, names: list[str]) -> list[int]:
    found = dict(Tag.objects.filter(location=location, name__in=names).values_list("name", "id"))
    missing = [n for n in names if n not in found]
    if missing:
        raise serializers.ValidationError({"tags": [f"No tag named {n!r}; create it first." for n in missing]})
    return list(found.values())


@extend_schema_view(
    list=extend_schema(parameters=[ContactFilters], summary="Contacts, filtered",
                       description="Custom fields filter too: f_<key>=value (text: contains; choice, number, date: equals), "
                                   "f_<key>_min= and f_<key>_max= (numbers and dates, inclusive)."),
    create=extend_schema(request=ContactCreateSerializer, responses={201: ContactSerializer}, summary="Create a contact"),
    partial_update=extend_schema(request=ContactUpdateSerializer, responses=ContactSerializer,
                                 summary="Change the name (person-set), the set of tags and/or custom field values"),
)
class ContactViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LocationViewSet):
    serializer_class = ContactSerializer
    filter_serializer_class = ContactFilters
    ordering_fields = ("id", "created_at")

    def get_queryset(self):
        return Contact.objects.filter(location=self.location).prefetch_related(
            Prefetch("tags", queryset=Tag.objects.only("id", "name")),
            Prefetch("account_links", queryset=ContactAccount.objects.only("id", "contact_id", "account_id", "platform")),
            Prefetch("field_values", queryset=ContactFieldValue.objects.select_related("field")),
        )

    def apply_filters(self, queryset, params):
        if "phone" in params:
            queryset = queryset.filter(phone=normalise_sender(params["phone"], default_region="US").value)
        if "tag" in params:
            queryset = queryset.filter(tags__name=params["tag"])
        if "account" in params:
            queryset = queryset.filter(account_links__account_id=params["account"])
        if "assignee" in params:
            queryset = queryset.filter(assignee_id=params["assignee"])
        if "q" in params:
            queryset = queryset.filter(pk__in=contacts_search(location=self.location, query=params["q"]).values("pk"))
        return apply_field_filters(queryset, self.location, self.request.query_params)

    def create(self, request):
        serializer = ContactCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        tag_ids = _tag_ids(self.location, data.get("tags", []))
        # The inbound upsert is the one place contacts are created (it also emits contact.created);
        # contact_update then makes the name person-set and attaches the tags, in one transaction.
        with transaction.atomic():
            contact, created, _ = contact_upsert_from_inbound(
                location=self.location, sender=NormalisedSender(data["phone"], True), platform_name=""
            )
            if not created:
                raise ApplicationError(f"A contact with the phone {data['phone']} exists already.", code="contact_exists",
                                       field="phone", extra={"contact": contact.pk})
            write_values(contact, clean_values(self.location, data.get("custom_fields", {})))
            contact_update(contact=contact, name=data.get("name", ""), tag_ids=tag_ids)
        return Response(self._present(contact), status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        contact = self.get_object()
        serializer = ContactUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        tag_ids = _tag_ids(self.location, data["tags"]) if "tags" in data else [t.pk for t in contact.tags.all()]
        with transaction.atomic():  # a wrong custom field value leaves name and tags as they were
            cleaned = clean_values(self.location, data.get("custom_fields", {}))
            write_values(contact, cleaned)
            contact_update(contact=contact, name=data.get("name", contact.name), tag_ids=tag_ids)
        return Response(self._present(contact))

    @extend_schema(request=ContactTagSerializer, responses=ContactSerializer, summary="Add a tag to the contact")
    @action(detail=True, methods=["post"], url_path="tags")
    def tag_add(self, request, pk=None):
        contact = self.get_object()
        serializer = ContactTagSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        (tag_id,) = _tag_ids(self.location, [serializer.validated_data["tag"]])
        contact_update(contact=contact, name=contact.name, tag_ids=[t.pk for t in contact.tags.all()] + [tag_id])
        return Response(self._present(contact))

    @extend_schema(request=None, responses=ContactSerializer, summary="Remove a tag from the contact",
                   parameters=[OpenApiParameter("tag_name", str, OpenApiParameter.PATH, description="Tag name")])
    @action(detail=True, methods=["delete"], url_path=r"tags/(?P<tag_name>[^/]+)", url_name="tag-remove")
    def tag_remove(self, request, pk=None, tag_name=None):
        contact = self.get_object()
        current = {t.name: t.pk for t in contact.tags.all()}
        if tag_name not in current:
            raise ApplicationError(f"The contact has no tag {tag_name!r}.", code="not_tagged")
        contact_update(contact=contact, name=contact.name, tag_ids=[pk for name, pk in current.items() if name != tag_name])
        return Response(self._present(contact))

    def _present(self, contact) -> dict:
        return ContactSerializer(self.get_queryset().get(pk=contact.pk)).data


# --- tags --------------------------------------------------------------------------------------
class TagSerializer(serializers.ModelSerializer):
    contact_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Tag
        fields = ["id", "name", "account", "contact_count", "created_at"]
        extra_kwargs = {"account": {"help_text": "The account this tag belongs to (its own tag), if any"}}


class TagWriteSerializer(serializers.Serializer):
    name = tag_name_field()


class TagMergeSerializer(serializers.Serializer):
    into = LocationObjectField(queryset=Tag.objects.all(), help_text="Id of the tag that receives the contacts")


class TagFilters(serializers.Serializer):
    q = serializers.CharField(required=False, max_length=100, help_text="Part of the name")


@extend_schema_view(
    list=extend_schema(parameters=[TagFilters], summary="Tags with their contact counts"),
    create=extend_schema(request=TagWriteSerializer, responses={201: TagSerializer}, summary="Create a tag"),
    partial_update=extend_schema(request=TagWriteSerializer, responses=TagSerializer, summary="Rename a tag"),
    destroy=extend_schema(summary="Delete a tag (an account's own tag is protected while the account exists)"),
)
class TagViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LocationViewSet):
    serializer_class = TagSerializer
    permission_classes = [HasLocationToken, AdminTokenForWrites]
    managed_name = "tags"
    filter_serializer_class = TagFilters
    ordering = ("name",)
    ordering_fields = ("id", "name")

    def get_queryset(self):
        return tags_with_counts(self.location)

    def apply_filters(self, queryset, params):
        return queryset.filter(name__icontains=params["q"]) if "q" in params else queryset

    def create(self, request):
        serializer = TagWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tag = tag_create(location=self.location, name=serializer.validated_data["name"])
        return Response(self._present(tag), status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        tag = self.get_object()
        serializer = TagWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        tag_rename(tag=tag, name=serializer.validated_data["name"])
        return Response(self._present(tag))

    def destroy(self, request, pk=None):
        tag_delete(tag=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(request=TagMergeSerializer, responses=TagSerializer,
                   summary="Merge this tag into another: its contacts get the other tag, this one is deleted")
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        source = self.get_object()
        serializer = TagMergeSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        into = serializer.validated_data["into"]
        tag_merge(source=source, into=into)
        return Response(self._present(into))

    def _present(self, tag) -> dict:
        return TagSerializer(self.get_queryset().get(pk=tag.pk)).data
