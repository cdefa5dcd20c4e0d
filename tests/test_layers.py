"""The library's layers point one way (data -> encoders/cache -> features -> models -> methods -> train ->
evaluate -> experiments/bench -> chapters), and modules import at their top."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

LIBRARY = Path(__file__).resolve().parents[1] / "modbal_lib"
ABOVE_METHODS = ("modbal_lib.encoders", "modbal_lib.data", "modbal_lib.train", "modbal_lib.features",
                 "modbal_lib.experiments", "modbal_lib.evaluate", "modbal_lib.cache")
# optional packages (PyAV: the "media" extra; selenium and otter: the "test" extra) and transformers (seconds to
# import, only for the papers' hf: encoders) are imported where they are needed
LAZY_ALLOWED = {"av", "selenium", "otter", "transformers"}


@pytest.mark.parametrize("module", ["modbal_lib.methods.pcgrad", "modbal_lib.methods"])
def test_methods_import_nothing_above_them(module):
    code = (f"import sys, {module}; above = {ABOVE_METHODS!r}; "
            "print(sorted(m for m in sys.modules if m in above or m.startswith(tuple(a + '.' for a in above))))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def function_level_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for function in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
        for node in ast.walk(function):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            found += [f"{path.relative_to(LIBRARY.parent)}:{node.lineno} {name}" for name in names
                      if name.split(".")[0] not in LAZY_ALLOWED]
    return found


def test_no_imports_inside_functions_except_optional_heavy_packages():
    found = [line for path in sorted(LIBRARY.rglob("*.py")) for line in function_level_imports(path)]
    assert found == []
