from django.contrib import admin


class WhatSnapAdminSite(admin.AdminSite):
    site_header = "WhatSnap administration"
    site_title = "WhatSnap admin"
    index_title = "Locations, accounts, contacts and conversations"
