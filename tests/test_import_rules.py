"""DESIGN.md §2: imports flow one way between passline's top-level packages."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OURS = {"protocol", "kitchen", "printer_drivers", "broker", "store_client", "kds_web", "passline"}
ALLOWED: dict[str, set[str]] = {
    "protocol": set(),
    "kitchen": {"protocol"},  # DESIGN.md §8.1
    "printer_drivers": {"protocol"},
    "broker": {"protocol", "kitchen", "kds_web"},  # the broker serves the static web apps
    "store_client": {
        "protocol",
        "kitchen",
        "printer_drivers",
        "kds_web",
    },  # the edge serves the KDS app
    "kds_web": set(),
    "passline": OURS,
}


def imported_packages(path: Path) -> set[tuple[str, int]]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found |= {(alias.name.split(".")[0], node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add((node.module.split(".")[0], node.lineno))
    return found


def test_imports_flow_one_way() -> None:
    violations = []
    for package, allowed in ALLOWED.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            for top, line in imported_packages(path):
                if top in OURS and top != package and top not in allowed:
                    violations.append(f"{path.relative_to(ROOT)}:{line} imports {top}")
    assert not violations, "DESIGN.md §2 import rule broken:\n" + "\n".join(violations)


def test_rule_checker_sees_violations(tmp_path: Path) -> None:
    bad = tmp_path / "m.py"
    bad.write_text("import broker.app\nfrom store_client import x\nfrom . import y\n")
    assert imported_packages(bad) == {("broker", 1), ("store_client", 2)}
