"""Pages to add a contact by hand, import contacts from a CSV file and export the filtered list."""
from django.contrib import messages
from django.http import StreamingHttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from accounts.tenancy import admin_required, get_for_location, location_required
from contacts import csv_export, csv_import, selectors
from contacts.adding import contact_add, phone_example
from contacts.fields import apply_filters, fields_of
from contacts.models import ContactImport, Tag
from whatsnap.errors import ApplicationError
from whatsnap.params import id_param


@location_required
def contact_new(request):
    location = request.location
    fields = fields_of(location)
    form = {"phone": "", "name": "", "tag_ids": set(), "values": {}}
    errors = {}
    if request.method == "POST":
        form = {"phone": request.POST.get("phone", "")[:60], "name": request.POST.get("name", "")[:120],
                "tag_ids": {n for n in map(id_param, request.POST.getlist("tags")) if n},
                "values": {f.key: request.POST.get(f"cf_{f.key}", "")[:500] for f in fields}}
        try:
            contact, created = contact_add(location=location, phone=form["phone"], name=form["name"],
                                           tag_ids=form["tag_ids"], field_values=form["values"])
        except ApplicationError as exc:
            errors = exc.extra.get("custom_fields") or {exc.field or "phone": exc.message}
        else:
            if created:
                messages.success(request, f"{contact.display_name} added.")
            else:
                messages.info(request, f"{contact.phone} is already in your contacts as {contact.display_name}: here it is.")
            return redirect("contact-detail", pk=contact.pk)
    rows = [{"field": f, "value": form["values"].get(f.key, ""), "error": errors.get(f.key, "")} for f in fields]
    return render(request, "contacts/add.html", {
        "form": form, "errors": errors, "rows": rows, "tags": Tag.objects.filter(location=location),
        "region": location.phone_region, "phone_example": phone_example(location.phone_region),
    }, status=422 if errors else 200)


def filtered_contacts(request):
    """The contact list as its filters say (search, tag, custom fields); shared by the list and
    its export. Raises ApplicationError for a custom-field filter value of the wrong kind."""
    contacts = selectors.contacts_search(location=request.location, query=request.GET.get("q", "").strip()[:100],
                                         tag_id=id_param(request.GET.get("tag")))
    return apply_filters(contacts, request.location, request.GET)


@admin_required
def contact_export(request):
    try:
        contacts = filtered_contacts(request)
    except ApplicationError as exc:
        messages.error(request, exc.message)
        return redirect("contact-list")
    stamp = timezone.localtime().strftime("%Y-%m-%d")
    response = StreamingHttpResponse(csv_export.export_rows(request.location, contacts), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="contacts-{request.location.slug}-{stamp}.csv"'
    response["X-Content-Type-Options"] = "nosniff"
    return response


@admin_required
def contact_import(request):
    error = ""
    if request.method == "POST":
        try:
            started = csv_import.import_start(location=request.location, user=request.user, upload=request.FILES.get("file"))
        except ApplicationError as exc:
            error = exc.message
        else:
            return redirect("contact-import-map", pk=started.pk)
    recent = ContactImport.objects.filter(location=request.location).exclude(status=ContactImport.Status.MAPPING)[:10]
    return render(request, "contacts/import.html", {"error": error, "recent": recent,
                                                    "max_mb": csv_import.max_bytes() // (1024 * 1024)},
                  status=422 if error else 200)


@admin_required
def contact_import_map(request, pk):
    contact_import = get_for_location(ContactImport.objects.all(), request.location, pk=pk)
    if contact_import.status != ContactImport.Status.MAPPING:
        return redirect("contact-import-report", pk=pk)
    error = ""
    mapping = csv_import.guess_mapping(contact_import)
    tag_ids, update_existing = set(), True
    if request.method == "POST":
        if request.POST.get("action") == "cancel":
            csv_import.import_discard(contact_import)
            messages.info(request, "Import cancelled; the file is deleted.")
            return redirect("contact-import")
        mapping = {str(i): request.POST.get(f"col_{i}", "") for i in range(len(contact_import.headers))}
        tag_ids = {n for n in map(id_param, request.POST.getlist("tags")) if n}
        update_existing = request.POST.get("update_existing") == "on"
        try:
            csv_import.import_configure(contact_import=contact_import, mapping=mapping, tag_ids=tag_ids,
                                        update_existing=update_existing)
        except ApplicationError as exc:
            error = exc.message
        else:
            return redirect("contact-import-report", pk=pk)
    columns = [{"index": i, "header": h, "target": mapping.get(str(i), "")} for i, h in enumerate(contact_import.headers)]
    return render(request, "contacts/import_map.html", {
        "imp": contact_import, "columns": columns, "targets": csv_import.targets_for(request.location),
        "preview": csv_import.preview(contact_import), "tags": Tag.objects.filter(location=request.location),
        "tag_ids": tag_ids, "update_existing": update_existing, "error": error, "region": request.location.phone_region,
    }, status=422 if error else 200)


@admin_required
def contact_import_report(request, pk):
    contact_import = get_for_location(ContactImport.objects.all(), request.location, pk=pk)
    if contact_import.status == ContactImport.Status.MAPPING:
        return redirect("contact-import-map", pk=pk)
    template = "contacts/_import_report.html" if request.headers.get("HX-Request") else "contacts/import_report.html"
    return render(request, template, {"imp": contact_import})


@require_POST
@admin_required
def contact_import_discard(request, pk):
    csv_import.import_discard(get_for_location(ContactImport.objects.all(), request.location, pk=pk))
    return redirect("contact-import")
