from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class AdminConfig(admin_apps.AdminConfig):
    default = False
    default_site = "whatsnap.admin_site.WhatSnapAdminSite"


class WhatsnapConfig(AppConfig):
    default = True
    name = "whatsnap"
    verbose_name = "WhatSnap core"

    def ready(self):
        from django_q.signals import post_spawn

        from whatsnap import listener
        from whatsnap.idempotency import idempotency_keys_prune
        from whatsnap.tasks import register_sweep
        from whatsnap.waker import start_in_worker

        register_sweep(idempotency_keys_prune)
        post_spawn.connect(start_in_worker, dispatch_uid="whatsnap-waker")  # each qcluster worker process
        post_spawn.connect(listener.start_in_worker, dispatch_uid="whatsnap-claims")  # the same, claim loop
