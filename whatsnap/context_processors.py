def tenancy(request):
    location = getattr(request, "location", None)
    return {"current_location": location}
