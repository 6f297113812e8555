from django import template

register = template.Library()


@register.filter
def duration(seconds) -> str:
    """Seconds as '45 s', '12 min', '3.5 h', '2.1 d'; '—' when unknown."""
    if seconds is None:
        return "—"
    seconds = float(seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
