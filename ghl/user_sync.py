"""GHL users matched to our members by e-mail: a conversation's assignee becomes the GHL
contact's assignedTo, and the author of a reply typed in GHL is the member behind that user."""
from django.contrib.auth import get_user_model

from ghl.client import GhlClient
from ghl.models import GhlConnection, GhlUser


def users_sync(connection: GhlConnection) -> int:
    """Fetch the location's GHL users and match them to our members by e-mail."""
    client = GhlClient(connection)
    location = connection.location
    response = client.request("GET", "/users/search", params={"companyId": connection.company_id, "locationId": location.ghl_location_id})
    users = response.data.get("users") or []
    members = {
        (u.email or "").lower(): u
        for u in get_user_model().objects.filter(memberships__location=location).exclude(email="")
    }
    for row in users:
        email = (row.get("email") or "").lower()
        GhlUser.objects.update_or_create(
            location=location, ghl_user_id=row["id"],
            defaults={"email": email, "name": row.get("name") or " ".join(filter(None, [row.get("firstName"), row.get("lastName")])), "user": members.get(email)},
        )
    return len(users)
