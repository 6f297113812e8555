"""/api/v1/routing-rules/ (CRUD, validated by the same form as the routing page) and
/api/v1/teams/ (read-only: rules point at teams by id)."""
from django.db.models import Count, Min
from django.forms.models import model_to_dict
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status
from rest_framework.response import Response

from accounts.api_auth import HasLocationToken
from accounts.models import Account
from contacts.models import Tag
from routing.forms import RoutingRuleForm
from routing.models import RoutingRule, Team
from whatsnap.api_base import MAX_ID, AdminTokenForWrites, LocationViewSet

FORM_FIELDS = RoutingRuleForm._meta.fields


class RoutingRuleSerializer(serializers.ModelSerializer):
    tags = serializers.SerializerMethodField(help_text="Tag names; the rule matches contacts with any/all of them")

    class Meta:
        model = RoutingRule
        fields = ["id", "name", "position", "enabled", "tags", "tag_mode", "account", "platform", "hours", "target",
                  "target_user", "target_team"]

    def get_tags(self, obj) -> list[str]:
        return sorted(t.name for t in obj.tags.all())


@extend_schema_field({"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "minLength": 1, "maxLength": 100}]})
class TagRefField(serializers.Field):
    """A tag by id (a number) or by name (a string)."""

    def to_internal_value(self, data):
        if isinstance(data, int) and not isinstance(data, bool) and 1 <= data <= MAX_ID:
            return data
        if isinstance(data, str) and 0 < len(data) <= 100 and "\x00" not in data:
            return data
        raise serializers.ValidationError("A tag id (number) or name (string).")

    def to_representation(self, value):
        return value


def _optional_id(**kwargs):
    return serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_ID, **kwargs)


class RoutingRuleWriteSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=80)
    position = serializers.IntegerField(required=False, min_value=0, max_value=2_147_483_647,
                                        help_text="Rules are tried in ascending position")
    enabled = serializers.BooleanField(required=False)
    tags = serializers.ListField(child=TagRefField(), required=False, max_length=100)
    tag_mode = serializers.ChoiceField(choices=RoutingRule.TagMode.choices, required=False)
    account = _optional_id(help_text="Only conversations of this account")
    platform = serializers.CharField(required=False, allow_blank=True, max_length=20,
                                     help_text="Blank for any, or an account kind: " + ", ".join(Account.Kind.values))
    hours = serializers.ChoiceField(choices=RoutingRule.Hours.choices, required=False)
    target = serializers.ChoiceField(choices=RoutingRule.Target.choices, required=False)
    target_user = _optional_id(help_text="User id, for target=user")
    target_team = _optional_id(help_text="Team id, for target=team")


def _tag_pks(location, refs) -> list[int]:
    ids = {r for r in refs if isinstance(r, int)}
    names = {r for r in refs if isinstance(r, str)}
    tags = Tag.objects.filter(location=location)
    found_ids = set(tags.filter(pk__in=ids).values_list("pk", flat=True))
    found_names = dict(tags.filter(name__in=names).values_list("name", "pk"))
    missing = [str(i) for i in ids - found_ids] + sorted(names - set(found_names))
    if missing:
        raise serializers.ValidationError({"tags": [f"No tag {m!r} in this location." for m in missing]})
    return sorted(found_ids | set(found_names.values()))


@extend_schema_view(
    list=extend_schema(summary="Routing rules, in the order they are tried"),
    create=extend_schema(request=RoutingRuleWriteSerializer, responses={201: RoutingRuleSerializer}),
    partial_update=extend_schema(request=RoutingRuleWriteSerializer, responses=RoutingRuleSerializer),
)
class RoutingRuleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LocationViewSet):
    serializer_class = RoutingRuleSerializer
    permission_classes = [HasLocationToken, AdminTokenForWrites]
    managed_name = "routing rules"
    ordering = ("position", "id")
    ordering_fields = ("id", "position")

    def get_queryset(self):
        return RoutingRule.objects.filter(location=self.location).prefetch_related("tags")

    def create(self, request):
        rule = self._save(RoutingRule(), partial=False)
        return Response(self._present(rule), status=status.HTTP_201_CREATED)

    def partial_update(self, request, pk=None):
        rule = self._save(self.get_object(), partial=True)
        return Response(self._present(rule))

    def destroy(self, request, pk=None):
        self.get_object().delete()
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _save(self, rule: RoutingRule, *, partial: bool) -> RoutingRule:
        """Validate with the routing page's form: same rules, same location checks."""
        serializer = RoutingRuleWriteSerializer(data=self.request.data, partial=partial)
        serializer.is_valid(raise_exception=True)
        changes = dict(serializer.validated_data)
        if "tags" in changes:
            changes["tags"] = _tag_pks(self.location, changes["tags"])
        data = model_to_dict(rule, fields=FORM_FIELDS)
        data["tags"] = [t.pk for t in data.get("tags", [])]
        data.update({k: ("" if v is None else v) for k, v in changes.items()})
        form = RoutingRuleForm(data=data, instance=rule, location=self.location)
        if not form.is_valid():
            errors = {("non_field_errors" if k == "__all__" else k): [e["message"] for e in v]
                      for k, v in form.errors.get_json_data().items()}
            raise serializers.ValidationError(errors)
        return form.save()

    def _present(self, rule) -> dict:
        return RoutingRuleSerializer(self.get_queryset().get(pk=rule.pk)).data


class TeamSerializer(serializers.ModelSerializer):
    waiting = serializers.IntegerField(source="waiting_count", read_only=True, help_text="Conversations waiting for a member with room (the fair queue)")
    oldest_waiting_since = serializers.DateTimeField(read_only=True, allow_null=True,
                                                     help_text="When the oldest of them started waiting (null: none waits)")

    class Meta:
        model = Team
        fields = ["id", "name", "strategy", "sticky", "members", "waiting", "oldest_waiting_since"]
        extra_kwargs = {"members": {"help_text": "User ids"}}


@extend_schema_view(list=extend_schema(summary="Teams (targets of routing rules)"))
class TeamViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, LocationViewSet):
    serializer_class = TeamSerializer
    ordering = ("name",)
    ordering_fields = ("id", "name")

    def get_queryset(self):
        return (Team.objects.filter(location=self.location).prefetch_related("members")
                .annotate(waiting_count=Count("waiting"), oldest_waiting_since=Min("waiting__since")))
