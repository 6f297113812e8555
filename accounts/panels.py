"""What higher apps show on an account's page (its send queue, its GHL sync). accounts cannot
import them, so each registers a function in its AppConfig.ready(): the page's context gets
`name` = func(account) for every registered function, and its template shows what is there
(an app that is not installed adds nothing)."""
from collections.abc import Callable

_DETAIL_CONTEXT: dict[str, Callable] = {}


def register_detail_context(name: str, func: Callable) -> None:
    """Add `name` = func(account) to the context of every account page (registering a name
    again replaces its function: ready() may run more than once)."""
    _DETAIL_CONTEXT[name] = func


def detail_context(account) -> dict:
    return {name: func(account) for name, func in _DETAIL_CONTEXT.items()}
