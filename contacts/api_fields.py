"""/api/v1/custom-fields/: the location's custom field definitions (every token reads; admin
tokens define, change and delete them). Values are read and written on the contacts."""
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from accounts.api_auth import HasLocationToken
from contacts.fields import field_change, field_define, field_delete
from contacts.models import CustomField
from whatsnap.api_base import AdminTokenForWrites, LocationViewSet


class CustomFieldSerializer(serializers.ModelSerializer):
    class Meta:
        model = CustomField
        fields = ["id", "key", "name", "kind", "choices", "ghl_field", "position", "created_at"]
        extra_kwargs = {"key": {"help_text": "The key of the field's value in a contact's custom_fields"},
                        "ghl_field": {"help_text": "Id or key of the GHL custom field its values are sent to (blank: not sent)"}}


class CustomFieldCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=80)
    kind = serializers.ChoiceField(choices=CustomField.Kind.choices)
    key = serializers.CharField(max_length=60, required=False, allow_blank=True, help_text="Default: made from the name")
    choices = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=100,
                                    help_text="The options of a choice field")
    ghl_field = serializers.CharField(max_length=100, required=False, allow_blank=True)


class CustomFieldUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=80, required=False)
    choices = serializers.ListField(child=serializers.CharField(max_length=100), required=False, max_length=100)
    ghl_field = serializers.CharField(max_length=100, required=False, allow_blank=True)


@extend_schema_view(
    list=extend_schema(summary="Custom fields of the location's contacts"),
    create=extend_schema(request=CustomFieldCreateSerializer, responses={201: CustomFieldSerializer}, summary="Define a custom field"),
    partial_update=extend_schema(request=CustomFieldUpdateSerializer, responses=CustomFieldSerializer,
                                 summary="Rename a field, change its options or its GHL mapping (kind and key stay)"),
    destroy=extend_schema(summary="Delete a custom field and every contact's value of it"),
)
class CustomFieldViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LocationViewSet):
    serializer_class = CustomFieldSerializer
    permission_classes = [HasLocationToken, AdminTokenForWrites]
    managed_name = "custom fields"
    ordering = ("position",)
    ordering_fields = ("id", "position")

    def get_queryset(self):
        return CustomField.objects.filter(location=self.location)

    def create(self, request):
        serializer = CustomFieldCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        field = field_define(location=self.location, name=data["name"], kind=data["kind"], key=data.get("key", ""),
                             choices=data.get("choices", []), ghl_field=data.get("ghl_field", ""))
        return Response(CustomFieldSerializer(field).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        field = self.get_object()
        serializer = CustomFieldUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        field_change(field=field, name=data.get("name", field.name), choices=data.get("choices"),
                     ghl_field=data.get("ghl_field", field.ghl_field))
        return Response(CustomFieldSerializer(field).data)

    def destroy(self, request, pk=None):
        field_delete(field=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)
