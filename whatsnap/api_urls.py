from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from django.urls import path
from rest_framework.routers import SimpleRouter

from accounts.api import AccountViewSet
from contacts.api import ContactViewSet
from conversations.api import MessageViewSet

router = SimpleRouter()
router.register("accounts", AccountViewSet, basename="api-account")
router.register("contacts", ContactViewSet, basename="api-contact")
router.register("messages", MessageViewSet, basename="api-message")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(permission_classes=[], authentication_classes=[]), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema", permission_classes=[], authentication_classes=[]), name="api-docs"),
    *router.urls,
]
