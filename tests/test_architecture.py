"""The architecture stays as the README draws it: apps import only downward (import-linter's
layers contract in .importlinter), no first-party import hides inside a function to dodge a
cycle, modules stay small, nothing outside accounts/providers/ branches on a backend, and the
README's event table is the registry's."""
import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from whatsnap import events

ROOT = Path(__file__).resolve().parent.parent
APPS = ["whatsnap", "accounts", "contacts", "conversations", "routing", "broadcasts", "ghl", "hooks"]
BACKENDS = {"sandbox", "evolution", "waha", "bluebubbles", "android_sms", "twilio"}
MAX_MODULE_LINES = 400


def _modules(*, include_providers: bool = True):
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            if not include_providers and path.is_relative_to(ROOT / "accounts" / "providers"):
                continue
            yield path


def _lint(cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache", "--config", str(cwd / ".importlinter")],
        cwd=cwd, capture_output=True, text=True, timeout=300, env={"PYTHONPATH": str(cwd), "PATH": "/usr/bin:/bin"},
    )


def test_apps_import_only_downward():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_layers_contract_refuses_a_back_import(tmp_path):
    """The contract bites: a copy of the tree with one upward import fails it."""
    for app in APPS:
        shutil.copytree(ROOT / app, tmp_path / app, ignore=shutil.ignore_patterns("__pycache__", "migrations"))
    shutil.copy(ROOT / ".importlinter", tmp_path / ".importlinter")
    (tmp_path / "accounts" / "back_import_probe.py").write_text("from conversations.models import Message  # noqa\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "accounts is not allowed to import conversations" in result.stdout
    assert "accounts.back_import_probe -> conversations.models" in result.stdout


def _function_level_imports(path: Path):
    tree = ast.parse(path.read_text(), filename=str(path))
    for func in ast.walk(tree):
        if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if func.name == "ready":  # AppConfig.ready(): where Django wants registrations imported
            continue
        for node in ast.walk(func):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name.split(".")[0] in APPS:
                    yield f"{path.relative_to(ROOT)}:{node.lineno} {func.name}() imports {name}"


def test_no_first_party_import_hides_inside_a_function():
    found = [hit for path in _modules() for hit in _function_level_imports(path)]
    assert found == [], "\n".join(found)


def test_modules_stay_small():
    big = [f"{p.relative_to(ROOT)}: {n} lines" for p in _modules() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES]
    assert big == [], "split these by responsibility:\n" + "\n".join(big)


def _backend_branches(path: Path):
    """`x.backend == "twilio"`, `kind in ("twilio", ...)`, `if backend != "waha"` and the like."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        for side in [node.left, *node.comparators]:
            constants = [side] if isinstance(side, ast.Constant) else getattr(side, "elts", [])
            if any(isinstance(c, ast.Constant) and c.value in BACKENDS for c in constants):
                yield f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node)}"


def test_only_providers_know_backend_names():
    found = [hit for path in _modules(include_providers=False) for hit in _backend_branches(path)]
    assert found == [], "ask the provider instead:\n" + "\n".join(found)


HANDLER = r"`?((?:" + "|".join(APPS) + r")\.[\w.]+)`?( \(after commit\))?"


def _readme_event_table() -> set[tuple[str, str, bool]]:
    """Rows `| event | what it carries | subscriber, subscriber (after commit), … |`."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Who reacts to what", 1)[1].split("\n## ", 1)[0].split("\n### ", 1)[0]
    rows = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name = cells[0].strip("`")
        if len(cells) >= 3 and name in events.CATALOGUE:
            for handler, after_commit in re.findall(HANDLER, cells[2]):
                rows.add((name, handler, bool(after_commit)))
    return rows


def test_readme_lists_every_subscription():
    """One place lists who reacts to what: the README's table is the registry, row for row."""
    registered = {(s.event, s.label, s.on_commit) for s in events.subscriptions()}
    assert registered, "no subscriptions: AppConfig.ready() did not run?"
    documented = _readme_event_table()
    assert registered - documented == set(), "missing from the README"
    assert documented - registered == set(), "in the README but not registered"


def test_every_recorded_event_is_in_the_catalogue():
    """record()/subscribe() refuse names the catalogue does not list."""
    with pytest.raises(Exception, match="unknown domain event"):
        events.record("message.recieved", location_id=1)
    recorded = set()
    for path in _modules():
        recorded |= set(re.findall(r'events\.record\(\s*"([\w.]+)"', path.read_text()))
    assert recorded <= set(events.CATALOGUE)
    assert set(events.CATALOGUE) - recorded == set(), "catalogued but never recorded"


def test_an_event_never_carries_another_locations_object():
    """Subscribers write for the event's location: an object of another one is refused."""
    from types import SimpleNamespace

    with pytest.raises(ValueError, match="message belongs to location 2, the event to location 1"):
        events.record("note.added", location_id=1, conversation=SimpleNamespace(location_id=1), message=SimpleNamespace(location_id=2))
    events._same_location("note.added", 3, {"conversation": SimpleNamespace(location_id=3), "reason": "text"})
