"""The Templates page: every member sees the location's templates (the composer's `/` picker
offers them); admins add, change and delete them (conversations.message_templates)."""
from types import SimpleNamespace

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from accounts.tenancy import admin_required, get_for_location, location_required
from conversations.composer import is_admin
from conversations.merge_fields import FIELDS, MergeContext, merge_fields_render
from conversations.message_templates import template_create, template_delete, template_update, templates_for
from conversations.models import MessageTemplate
from whatsnap.errors import ApplicationError

# What the list's preview fills the merge fields with (a made-up contact, never a real one).
SAMPLE = MergeContext(contact=SimpleNamespace(name="Ada Lovelace", phone="+14155550123"),
                      account=SimpleNamespace(name="Sales"), agent="Sam")


class TemplateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What agents see in the picker, e.g. “Opening hours”")
    shortcut = forms.CharField(max_length=40, required=False,
                               help_text="Optional: typing /shortcut in the composer finds it (one word, e.g. hours)")
    body = forms.CharField(label="Text", widget=forms.Textarea(attrs={"rows": 5}),
                           help_text="Merge fields are filled in for each contact: {{first_name|there}} uses “there” "
                                     "when the first name is unknown.")


def _page(request, form, editing=None):
    rows = [(t, merge_fields_render(t.body, SAMPLE)) for t in templates_for(request.location)]
    return render(request, "conversations/templates.html", {
        "templates": rows, "form": form, "editing": editing, "can_manage": is_admin(request), "fields": FIELDS,
    })


def _save(request, form, instance=None):
    """The service's answer: saved, or its error on the form's field."""
    if not form.is_valid():
        return None
    data = form.cleaned_data
    try:
        if instance is None:
            return template_create(location=request.location, created_by=request.user, **data)
        return template_update(template=instance, **data)
    except ApplicationError as exc:
        form.add_error(exc.field if exc.field in form.fields else None, exc.message)
        return None


@location_required
def templates_page(request):
    """GET: the list (and, for admins, the form to add one); POST (admins): add one."""
    if request.method != "POST":
        return _page(request, TemplateForm() if is_admin(request) else None)
    if not is_admin(request):
        raise PermissionDenied("Only location admins can add templates.")
    form = TemplateForm(request.POST)
    template = _save(request, form)
    if template is None:
        return _page(request, form)
    messages.success(request, f"Template “{template.name}” added.")
    return redirect("template-list")


@admin_required
def template_edit(request, pk):
    template = get_for_location(MessageTemplate.objects.all(), request.location, pk=pk)
    if request.method != "POST":
        return _page(request, TemplateForm(initial={"name": template.name, "shortcut": template.shortcut, "body": template.body}),
                     editing=template)
    form = TemplateForm(request.POST)
    if _save(request, form, template) is None:
        return _page(request, form, editing=template)
    messages.success(request, f"Template “{template.name}” saved.")
    return redirect("template-list")


@require_POST
@admin_required
def template_delete_view(request, pk):
    template = get_for_location(MessageTemplate.objects.all(), request.location, pk=pk)
    template_delete(template=template)
    messages.success(request, f"Template “{template.name}” deleted.")
    return redirect("template-list")
