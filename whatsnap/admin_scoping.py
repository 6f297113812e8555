"""The Django admin for many tenants: staff who are not superusers see, pick, search, filter,
act on and create only rows of the locations where they are an admin member.

Every ModelAdmin of the project either mixes in `LocationScopedAdmin` and declares the path
from its model to the location (`location_field = "conversation__account__location"`), or it
is made superuser-only by the site (whatsnap.admin_site), so an admin registered later without
a path fails closed instead of showing every tenant's rows.

This is the base layer: it names the accounts app's relations by string only (`memberships`,
`role="admin"`) and never imports it."""
from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path, lookup_spawns_duplicates
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied

ADMIN_ROLE = "admin"  # accounts.Membership.Role.ADMIN
USER_LOCATION_PATH = "memberships__location"  # a user belongs to the locations they are a member of


def admin_location_ids(request) -> frozenset:
    """The locations the request's user administers (read once per request)."""
    ids = getattr(request, "_admin_location_ids", None)
    if ids is None:
        ids = frozenset(request.user.memberships.filter(role=ADMIN_ROLE).values_list("location_id", flat=True))
        request._admin_location_ids = ids
    return ids


def location_path(model, admin_site) -> str | None:
    """How rows of `model` reach their location: declared by its ModelAdmin; users through
    their memberships; None when nothing says so (then nothing is shown)."""
    if model is get_user_model():
        return USER_LOCATION_PATH
    model_admin = admin_site._registry.get(model)
    return getattr(model_admin, "location_field", None)


def scope_queryset(queryset, request, path: str | None):
    """`queryset` cut to the user's locations; superusers keep everything."""
    if request.user.is_superuser:
        return queryset
    if path is None:
        return queryset.none()
    lookup = {f"{path}__in": admin_location_ids(request)}
    if lookup_spawns_duplicates(queryset.model._meta, path):
        # through a many-valued relation (a user's memberships) a join would repeat rows
        return queryset.filter(pk__in=queryset.model._default_manager.filter(**lookup).values("pk"))
    return queryset.filter(**lookup)


def location_id_of(obj, path: str):
    """The location id of an (unsaved) object, by following `path` attribute by attribute."""
    *hops, last = path.split("__")
    for hop in hops:
        obj = getattr(obj, hop, None)
        if obj is None:
            return None
    return obj.pk if last == "pk" else getattr(obj, f"{last}_id", None)


class ScopedChoicesMixin:
    """Foreign-key and many-to-many choices (selects, raw ids, autocomplete) limited to the
    user's locations: for ModelAdmins and their inlines alike."""

    def get_field_queryset(self, db, db_field, request):
        if request.user.is_superuser:
            return super().get_field_queryset(db, db_field, request)
        model = db_field.remote_field.model
        queryset = super().get_field_queryset(db, db_field, request)
        if queryset is None:
            queryset = model._default_manager.using(db).all()
        return scope_queryset(queryset, request, location_path(model, self.admin_site))

    def get_autocomplete_fields(self, request):
        """Autocomplete asks the related model's admin; where this user may not use it (users
        are superuser-only) the field falls back to a select of the scoped choices."""
        fields = super().get_autocomplete_fields(request)
        if request.user.is_superuser:
            return fields
        return [name for name in fields if self._related_admin_viewable(request, name)]

    def _related_admin_viewable(self, request, name: str) -> bool:
        related = self.admin_site._registry.get(self.model._meta.get_field(name).remote_field.model)
        return related is not None and related.has_view_permission(request)


class LocationScopedInline(ScopedChoicesMixin):
    """Inlines show the rows of their (already scoped) parent; their own choices are scoped."""


class LocationScopedAdmin(ScopedChoicesMixin):
    """A ModelAdmin whose rows belong to a location: `location_field` is the lookup path from
    the model to accounts.Location ("pk" for Location itself)."""

    location_field: str = ""

    def get_queryset(self, request):
        # the changelist, search, actions, object URLs and autocomplete all start here
        return scope_queryset(super().get_queryset(request), request, self.location_field)

    def get_list_filter(self, request):
        filters = super().get_list_filter(request)
        if request.user.is_superuser:
            return filters
        return [self._related_only(entry) for entry in filters]

    def _related_only(self, entry):
        """A relation filter offers only the values present in the scoped rows (the default
        lists every location's and every account's name)."""
        name = entry[0] if isinstance(entry, (list, tuple)) else entry
        if isinstance(name, str) and get_fields_from_path(self.model, name)[-1].is_relation:
            return (name, admin.RelatedOnlyFieldListFilter)
        return entry

    def save_form(self, request, form, change):
        """The last word on add and change forms and list edits: the row must end up in one of
        the user's locations (choices are scoped already; this catches whatever they miss)."""
        obj = super().save_form(request, form, change)
        if not request.user.is_superuser and location_id_of(obj, self.location_field) not in admin_location_ids(request):
            raise PermissionDenied("This row would belong to a location you do not administer.")
        return obj


class SuperuserOnlyAdmin:
    """Rows that belong to no location (users, groups, the task queue) are for operators: a
    staff user who could edit users could make themselves a superuser."""

    def has_module_permission(self, request):
        return request.user.is_superuser and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_view_permission(request, obj)

    def has_add_permission(self, request, *args):
        return request.user.is_superuser and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser and super().has_delete_permission(request, obj)


def scoped_admin_class(admin_class):
    """What the site registers: a LocationScopedAdmin as it is (its inlines must scope their
    choices too), anything else made superuser-only."""
    from django.core.exceptions import ImproperlyConfigured

    if not issubclass(admin_class, LocationScopedAdmin):
        return type(admin_class.__name__, (SuperuserOnlyAdmin, admin_class), {"__module__": admin_class.__module__})
    if not admin_class.location_field:
        raise ImproperlyConfigured(f"{admin_class.__name__} must set location_field.")
    for inline in admin_class.inlines:
        if not issubclass(inline, LocationScopedInline):
            raise ImproperlyConfigured(f"{admin_class.__name__}: inline {inline.__name__} must mix in LocationScopedInline.")
    return admin_class
