"""The reason-code table of the run report covers every code a run can report (batch/reasons.py).

The codes are found in the source, the way a reader would find them: every
``reference=`` given to an input error (the ``InputError`` family, classes
found by their bases), every class's ``default_reference``, the walk's skip
reasons, the pixel stage's and the sanitizer's codes, and the vault failures
that stop a run. A new code anywhere there fails this test until the table
says what it means and what to do.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import dicomcloak
from dicomcloak.audit import failures
from dicomcloak.batch.reasons import REASONS, reason
from dicomcloak.io import _entries

SRC = Path(dicomcloak.__file__).parent
#: Not a batch run: the gateway reports per association, verify and the commands report their own way.
NOT_A_RUN = ("net", "cli", "verify")
#: Call sites whose reference is a variable, and where its values come from (checked below).
DYNAMIC = {
    ("sanitize/stage.py", "reason"),  # the literal reasons given to _dispose
    ("pixels/stage.py", "reason"),  # the pixel pipeline's reasons (PixelResult.reason)
    ("batch/run.py", "entry.reason"),  # the walk's refusals (io._entries.UNSAFE_PATH)
}


def _modules() -> dict[Path, ast.Module]:
    return {
        path: ast.parse(path.read_text("utf-8"))
        for path in SRC.rglob("*.py")
        if path.relative_to(SRC).parts[0] not in NOT_A_RUN
    }


def _family(modules: dict[Path, ast.Module], root: str) -> set[str]:
    """``root`` and every class deriving from it, by name, across the package."""
    bases = {
        node.name: {base.id for base in node.bases if isinstance(base, ast.Name)}
        for tree in modules.values() for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
    }
    family = {root}
    while grown := {name for name, parents in bases.items() if parents & family} - family:
        family |= grown
    return family


def _constants(modules: dict[Path, ast.Module]) -> dict[str, set[str]]:
    """Module-level string constants by name (imported ones are found by the same name)."""
    found: dict[str, set[str]] = {}
    for tree in modules.values():
        for node in tree.body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
                for target in node.targets:
                    if isinstance(target, ast.Name) and isinstance(node.value.value, str):
                        found.setdefault(target.id, set()).add(node.value.value)
    return found


def _assigns(statement: ast.stmt, name: str) -> bool:
    """Whether ``statement`` is ``name = <constant>``."""
    if not isinstance(statement, ast.Assign) or not isinstance(statement.value, ast.Constant):
        return False
    return any(isinstance(target, ast.Name) and target.id == name for target in statement.targets)


def _callee(node: ast.Call) -> str:
    return node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")


def _references(modules: dict[Path, ast.Module], family: set[str]) -> Iterator[tuple[str, str, str]]:
    """(module, kind, value): ``code`` for a code found, ``dynamic`` for a reference held in a variable."""
    constants = _constants(modules)
    for path, tree in modules.items():
        where = path.relative_to(SRC).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name in family:
                for statement in node.body:
                    if _assigns(statement, "default_reference"):
                        yield where, "code", str(statement.value.value)  # type: ignore[attr-defined]
            if isinstance(node, ast.Call) and _callee(node) in family:
                for keyword in node.keywords:
                    if keyword.arg != "reference":
                        continue
                    value = keyword.value
                    if isinstance(value, ast.Constant):
                        yield where, "code", str(value.value)
                    elif isinstance(value, ast.Name) and value.id in constants:
                        yield from ((where, "code", code) for code in constants[value.id])
                    else:
                        yield where, "dynamic", ast.unparse(value)


def _literal_arguments(modules: dict[Path, ast.Module], module: str, function: str) -> set[str]:
    """Kebab-case string literals passed to ``function`` calls, or as ``reason=``, in ``module``."""
    found = set()
    for node in ast.walk(modules[SRC / module]):
        if isinstance(node, ast.Call):
            values = [*node.args] if _callee(node) == function else []
            values += [k.value for k in node.keywords if k.arg == "reason"]
            found |= {v.value for v in values if isinstance(v, ast.Constant) and isinstance(v.value, str)}
    return {code for code in found if code.islower() and "-" in code and " " not in code}


def _reportable() -> set[str]:
    modules = _modules()
    references = list(_references(modules, _family(modules, "InputError")))
    dynamic = {(where, value) for where, kind, value in references if kind == "dynamic"}
    assert dynamic == DYNAMIC, "a reference held in a variable: say where its values come from"
    codes = {value for _, kind, value in references if kind == "code"}
    codes |= _literal_arguments(modules, "sanitize/stage.py", "_dispose")
    codes |= _literal_arguments(modules, "pixels/pipeline.py", "_result")
    codes |= {value for name, value in vars(_entries).items() if name.isupper() and isinstance(value, str)}
    codes |= {failures.BUSY, failures.UNREACHABLE, failures.FULL, failures.BROKEN}  # they stop a run
    codes |= {"duplicate-instance", "output-not-placed", "worker-died"}  # batch.worker, batch.run, batch.pool
    return codes


def test_every_code_a_run_can_report_has_its_words() -> None:
    codes = _reportable()
    assert len(codes) > 50  # the scan found the codes (a broken scan finds next to none)
    assert {"not-dicom", "pixel-phi-remains", "overlay-present", "dangling-symlink", "encode-failed"} <= codes
    missing = sorted(codes - set(REASONS))
    assert not missing, f"add to batch/reasons.py: {missing}"


def test_every_entry_is_a_code_the_source_raises() -> None:
    text = "\n".join(path.read_text("utf-8") for path in SRC.rglob("*.py") if path.name != "reasons.py")
    stale = [code for code in REASONS if f'"{code}"' not in text]
    assert not stale, f"codes nobody raises any more: {stale}"


def test_each_entry_says_what_happened_and_what_to_do() -> None:
    for code, entry in REASONS.items():
        assert entry.code == code
        assert entry.outcome in {"quarantined", "skipped", "duplicate", "unwritten"}
        assert len(entry.meaning) > 10 and len(entry.action) > 5, code


def test_a_code_of_a_newer_version_gets_the_general_advice() -> None:
    entry = reason("pixel-from-the-future", "quarantined")
    assert entry.code == "pixel-from-the-future" and "docs/security.md" in entry.meaning
    assert reason("not-dicom") is REASONS["not-dicom"]
