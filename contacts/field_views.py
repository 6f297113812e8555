"""Custom fields: the admins' page that defines them, and the form (contact page, inbox panel)
where members fill in a contact's values."""
from django.contrib import messages
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.tenancy import admin_required, get_for_location, location_required
from contacts import fields as custom_fields
from contacts.models import Contact, CustomField
from whatsnap.errors import ApplicationError


@admin_required
def field_list(request):
    form, error = {}, ""
    if request.method == "POST":
        action = request.POST.get("action", "create")
        try:
            if action == "create":
                form = {k: request.POST.get(k, "") for k in ("name", "kind", "choices", "ghl_field")}
                field = custom_fields.field_define(location=request.location, **form)
                messages.success(request, f"Field {field.name} added.")
            else:
                field = get_for_location(CustomField.objects.all(), request.location, pk=request.POST.get("pk") or 0)
                if action == "delete":
                    custom_fields.field_delete(field=field)
                    messages.success(request, f"Field {field.name} deleted, with its values.")
                else:
                    custom_fields.field_change(field=field, name=request.POST.get("name", ""), ghl_field=request.POST.get("ghl_field", ""),
                                               choices=request.POST.get("choices") if field.kind == CustomField.Kind.CHOICE else None)
                    messages.success(request, f"Field {field.name} saved.")
            return redirect("contact-fields-define")
        except ApplicationError as exc:
            error = exc.message
    return render(request, "contacts/fields.html", {
        "fields": custom_fields.fields_of(request.location), "kinds": CustomField.Kind.choices, "form": form, "error": error,
    }, status=422 if error else 200)


@require_POST
@location_required
def contact_fields_edit(request, pk):
    """Any member saves a contact's values; answered with the form again (HTMX) or the page."""
    contact = get_for_location(Contact.objects.all(), request.location, pk=pk)
    rows = custom_fields.rows_of(contact)
    typed = {row["field"].key: request.POST.get(row["field"].key, "")[:600] for row in rows if row["field"].key in request.POST}
    saved, errors = False, {}
    try:
        custom_fields.contact_fields_set(contact=contact, values=typed)
        saved = True
    except ApplicationError as exc:
        errors = exc.extra.get("custom_fields") or {"": exc.message}
        for row in rows:
            row["value"], row["error"] = typed.get(row["field"].key, row["value"]), errors.get(row["field"].key, "")
    if request.headers.get("HX-Request"):
        return render(request, "contacts/_custom_fields.html", {"contact": contact, "field_rows": rows, "saved": saved})
    if errors:
        for message in errors.values():
            messages.error(request, message)
    else:
        messages.success(request, "Details saved.")
    return redirect("contact-detail", pk=pk)
