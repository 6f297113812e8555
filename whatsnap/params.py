"""Query parameters of the pages, read so that junk is ignored instead of reaching the
database (an id that is not a number, or one past the database's integer range, is a 500
there). A page given junk shows what it would show without the parameter."""
import re

_ID = re.compile(r"[0-9]{1,18}")  # ASCII digits only (str.isdigit() takes '²'), below 2**63
MAX_PAGE = 10_000  # deeper pages of an offset pagination are never wanted, and cost a scan


def id_param(value) -> int | None:
    """A positive row id, or None for anything else."""
    value = str(value or "").strip()
    return int(value) if _ID.fullmatch(value) and int(value) > 0 else None


def page_param(value) -> int:
    """A page number in 1..MAX_PAGE (junk is page 1)."""
    number = id_param(value)
    return min(number, MAX_PAGE) if number else 1
