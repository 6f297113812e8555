from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from accounts import alert_views, location_views, membership_views, two_factor_views
from accounts import logout as account_logout
from accounts import notification_prefs
from accounts import views as account_views
from broadcasts import views as broadcast_views
from contacts import field_views as contact_field_views
from contacts import io_views as contact_io_views
from contacts import views as contact_views
from conversations import report_views, sandbox_views, start_views, unfiled_views
from conversations import schedule_views, template_views
from conversations import upload_views
from conversations import notify_views
from conversations import views as conversation_views
from conversations.webhooks import webhook
from ghl import embed_views as ghl_embed_views
from ghl import views as ghl_views
from ghl import webhooks as ghl_webhooks
from routing import views as routing_views
from whatsnap import login, views

urlpatterns = [
    path("", conversation_views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("livez", views.livez, name="livez"),
    # provider webhooks: the hottest path, so near the top (Django tries the patterns in order)
    path("webhooks/<str:kind>/<int:account_id>/", webhook, name="webhook"),
    path("webhooks/<str:kind>/<int:account_id>/status/", webhook, name="webhook-status"),
    path("login/", login.LoginView.as_view(), name="login"),
    path("login/code/", login.login_code, name="login-code"),
    path("logout/", account_logout.LogoutView.as_view(), name="logout"),
    path("settings/password/", auth_views.PasswordChangeView.as_view(success_url="/settings/?password=changed"), name="password_change"),
    path("location/switch/", membership_views.location_switch, name="location-switch"),
    path("invitations/<str:token>/", membership_views.invitation_accept, name="invitation-accept"),
    path("admin/", admin.site.urls),
    # accounts
    path("accounts/", account_views.account_list, name="account-list"),
    path("accounts/rows/", account_views.account_rows, name="account-rows"),
    path("accounts/add/<str:choice>/numbers/", account_views.account_add_numbers, name="account-add-numbers"),
    path("accounts/add/", account_views.account_add, name="account-add"),
    path("accounts/add/<str:choice>/", account_views.account_add, name="account-add-choice"),
    path("accounts/<int:pk>/", account_views.account_detail, name="account-detail"),
    path("accounts/<int:pk>/connect/", account_views.account_status_fragment, name="account-connect"),
    path("accounts/<int:pk>/history/", account_views.account_history_fragment, name="account-history"),
    path("accounts/<int:pk>/diagnostics/", account_views.account_diagnostics_fragment, name="account-diagnostics"),
    path("accounts/<int:pk>/qr/refresh/", account_views.account_qr_refresh, name="account-qr-refresh"),
    path("accounts/<int:pk>/unfiled/rerun/", unfiled_views.account_unfiled_rerun, name="account-unfiled-rerun"),
    path("accounts/alerts/", alert_views.account_alerts_banner, name="account-alerts"),
    path("accounts/<int:pk>/delete/", account_views.account_delete_confirm, name="account-delete"),
    path("accounts/<int:pk>/settings/", account_views.account_settings, name="account-settings"),
    path("accounts/<int:pk>/report/", report_views.account_report, name="account-report"),
    path("reports/", report_views.location_report, name="location-report"),
    path("accounts/<int:pk>/<str:action>/", account_views.account_action, name="account-action"),
    # the sandbox phone
    path("sandbox/<int:pk>/phone/", sandbox_views.sandbox_phone, name="sandbox-phone"),
    path("sandbox/<int:pk>/thread/", sandbox_views.sandbox_thread, name="sandbox-thread"),
    path("sandbox/<int:pk>/link/", sandbox_views.sandbox_link, name="sandbox-link"),
    path("sandbox/<int:pk>/send/", sandbox_views.sandbox_send, name="sandbox-send"),
    # inbox
    path("inbox/", conversation_views.inbox, name="inbox"),
    path("inbox/list/", conversation_views.inbox_list, name="inbox-list"),
    path("inbox/notifications/", notify_views.notify_state, name="inbox-notifications"),
    path("inbox/new/", start_views.conversation_new, name="conversation-new"),
    path("inbox/new/contacts/", start_views.conversation_new_contacts, name="conversation-new-contacts"),
    path("inbox/<int:pk>/", conversation_views.conversation_detail, name="conversation"),
    path("inbox/<int:pk>/thread/", conversation_views.conversation_thread, name="conversation-thread"),
    path("inbox/<int:pk>/header/", conversation_views.conversation_header, name="conversation-header"),
    path("inbox/<int:pk>/reply/", conversation_views.conversation_reply, name="conversation-reply"),
    path("inbox/<int:pk>/panel/", conversation_views.conversation_panel, name="conversation-panel"),
    path("inbox/<int:pk>/action/", conversation_views.conversation_action, name="conversation-action"),
    path("inbox/messages/<int:pk>/retry/", conversation_views.message_retry_view, name="message-retry"),
    path("inbox/messages/<int:pk>/react/", conversation_views.message_react_view, name="message-react"),
    path("inbox/messages/<int:pk>/media/<int:index>/", conversation_views.message_media, name="message-media"),
    path("inbox/<int:pk>/uploads/", upload_views.conversation_upload, name="conversation-upload"),
    path("inbox/uploads/<int:pk>/", upload_views.upload_file, name="upload-file"),
    path("inbox/uploads/<int:pk>/remove/", upload_views.upload_delete, name="upload-remove"),
    path("media/<str:token>/<str:name>", upload_views.upload_public, name="upload-public"),
    path("inbox/<int:pk>/schedule/", schedule_views.conversation_schedule, name="conversation-schedule"),
    path("inbox/<int:pk>/scheduled/", schedule_views.conversation_scheduled, name="conversation-scheduled"),
    path("inbox/scheduled/<int:pk>/edit/", schedule_views.scheduled_edit, name="scheduled-edit"),
    path("inbox/scheduled/<int:pk>/cancel/", schedule_views.scheduled_cancel, name="scheduled-cancel"),
    # templates (the composer's / picker)
    path("templates/", template_views.templates_page, name="template-list"),
    path("templates/<int:pk>/", template_views.template_edit, name="template-edit"),
    path("templates/<int:pk>/delete/", template_views.template_delete_view, name="template-delete"),
    # broadcasts
    path("broadcasts/", broadcast_views.broadcast_list, name="broadcast-list"),
    path("broadcasts/new/", broadcast_views.broadcast_edit, name="broadcast-new"),
    path("broadcasts/preview/", broadcast_views.broadcast_preview, name="broadcast-preview"),
    path("broadcasts/<int:pk>/", broadcast_views.broadcast_detail, name="broadcast-detail"),
    path("broadcasts/<int:pk>/edit/", broadcast_views.broadcast_edit, name="broadcast-edit"),
    path("broadcasts/<int:pk>/progress/", broadcast_views.broadcast_progress, name="broadcast-progress"),
    path("broadcasts/<int:pk>/recipients/", broadcast_views.broadcast_recipients, name="broadcast-recipients"),
    path("broadcasts/<int:pk>/results.csv", broadcast_views.broadcast_csv, name="broadcast-csv"),
    path("broadcasts/<int:pk>/<str:action>/", broadcast_views.broadcast_action, name="broadcast-action"),
    # contacts and tags
    path("contacts/", contact_views.contact_list, name="contact-list"),
    path("contacts/<int:pk>/", contact_views.contact_detail, name="contact-detail"),
    path("contacts/new/", contact_io_views.contact_new, name="contact-new"),
    path("contacts/export.csv", contact_io_views.contact_export, name="contact-export"),
    path("contacts/import/", contact_io_views.contact_import, name="contact-import"),
    path("contacts/import/<int:pk>/", contact_io_views.contact_import_map, name="contact-import-map"),
    path("contacts/import/<int:pk>/report/", contact_io_views.contact_import_report, name="contact-import-report"),
    path("contacts/import/<int:pk>/discard/", contact_io_views.contact_import_discard, name="contact-import-discard"),
    path("contacts/fields/", contact_field_views.field_list, name="contact-fields-define"),
    path("contacts/<int:pk>/fields/", contact_field_views.contact_fields_edit, name="contact-fields"),
    path("tags/", contact_views.tag_list, name="tag-list"),
    path("tags/create/", contact_views.tag_action, name="tag-create"),
    path("tags/<int:pk>/", contact_views.tag_action, name="tag-action"),
    # routing
    path("routing/", routing_views.routing_home, name="routing"),
    path("routing/dry-run/", routing_views.dry_run, name="routing-dry-run"),
    path("routing/waiting/", routing_views.waiting, name="routing-waiting"),
    path("routing/rules/add/", routing_views.rule_edit, name="rule-add"),
    path("routing/rules/<int:pk>/", routing_views.rule_edit, name="rule-edit"),
    path("routing/rules/<int:pk>/delete/", routing_views.rule_delete, name="rule-delete"),
    path("routing/teams/add/", routing_views.team_edit, name="team-add"),
    path("routing/teams/<int:pk>/", routing_views.team_edit, name="team-edit"),
    path("me/availability/", routing_views.availability_set, name="availability"),
    path("settings/", location_views.settings_page, name="settings"),
    path("settings/me/", location_views.my_preferences, name="settings-me"),
    path("settings/me/notifications/", notification_prefs.my_notifications, name="settings-notifications"),
    path("settings/location/", location_views.location_details, name="settings-location"),
    path("settings/members/add/", location_views.member_add, name="settings-member-add"),
    path("settings/members/<int:pk>/", location_views.member_change, name="settings-member"),
    path("settings/invitations/", membership_views.invitation_create, name="settings-invitation-create"),
    path("settings/invitations/<int:pk>/revoke/", membership_views.invitation_revoke, name="settings-invitation-revoke"),
    path("settings/two-factor/", two_factor_views.two_factor_page, name="two-factor"),
    path("settings/two-factor/start/", two_factor_views.two_factor_start, name="two-factor-start"),
    path("settings/two-factor/confirm/", two_factor_views.two_factor_confirm, name="two-factor-confirm"),
    path("settings/two-factor/disable/", two_factor_views.two_factor_disable, name="two-factor-disable"),
    path("settings/location/two-factor/", two_factor_views.location_two_factor, name="settings-location-two-factor"),
    path("settings/api-keys/", location_views.token_create, name="settings-token-create"),
    path("settings/api-keys/<int:pk>/revoke/", location_views.token_revoke, name="settings-token-revoke"),
    # GoHighLevel
    path("ghl/", ghl_views.ghl_home, name="ghl-home"),
    path("ghl/oauth/start", ghl_views.oauth_start, name="ghl-oauth-start"),
    path("ghl/oauth/callback", ghl_views.oauth_callback, name="ghl-oauth-callback"),
    path("ghl/actions/<str:action>/", ghl_views.ghl_action, name="ghl-action"),
    path("ghl/sending/", ghl_views.ghl_sending, name="ghl-sending"),
    # WhatSnap as a custom page inside GHL: sign in as the GHL user (ghl/embed_views.py)
    path("ghl/app/", ghl_embed_views.embed_page, name="ghl-embed"),
    path("ghl/app/sign-in/", ghl_embed_views.embed_sign_in, name="ghl-embed-sign-in"),
    path("ghl/webhooks/provider/", ghl_webhooks.provider_webhook, name="ghl-provider-webhook"),
    path("ghl/webhooks/provider/whatsapp/", ghl_webhooks.whatsapp_provider_webhook, name="ghl-whatsapp-provider-webhook"),
    path("ghl/webhooks/app/", ghl_webhooks.app_webhook, name="ghl-app-webhook"),
    # REST API
    path("api/v1/", include("whatsnap.api_urls")),
]
