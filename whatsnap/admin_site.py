from django.contrib import admin
from django.shortcuts import render

from whatsnap.admin_scoping import scoped_admin_class
from whatsnap.login import LoginView
from whatsnap.two_factor import has_device


class WhatSnapAdminSite(admin.AdminSite):
    site_header = "WhatSnap administration"
    site_title = "WhatSnap admin"
    index_title = "Locations, accounts, contacts and conversations"

    def register(self, model_or_iterable, admin_class=None, **options):
        """Every ModelAdmin is scoped to the user's locations or made superuser-only (fail closed)."""
        super().register(model_or_iterable, scoped_admin_class(admin_class or admin.ModelAdmin), **options)

    def has_permission(self, request):
        """Staff with two-factor need a session that gave the code, whatever logged it in."""
        if not super().has_permission(request):
            return False
        return request.user.is_verified() or not has_device(request.user)

    def login(self, request, extra_context=None):
        """The site's own login (lockout and code step), not the admin's password-only one. A
        member who is logged in but no operator is told so, not shown a login form again."""
        if request.user.is_authenticated and not request.user.is_staff:
            return render(request, "registration/admin_not_operator.html", status=403)

        return LoginView.as_view(extra_context={"admin_login": True, **(extra_context or {})})(request)
