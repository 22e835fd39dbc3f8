"""The package's types hold: `mypy --strict` passes on the installed package
and on the README's Python examples, and `mypy.stubtest` finds the stubs
(__init__.pyi, _native.pyi) in step with the runtime (issue 7, item 8)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytest.importorskip("mypy", reason="mypy is not installed: `pip install mypy` (scripts/test-all.sh puts it in .venv)")

# pandas and matplotlib are optional extras, imported only inside the methods
# that need them, and ship no type information of their own: a user without
# pandas-stubs would see the same.
MYPY_INI = """\
[mypy]
strict = True
[mypy-pandas.*]
ignore_missing_imports = True
[mypy-matplotlib.*]
ignore_missing_imports = True
"""

# What the README's snippets take from the text around them: the import, and
# names for the user's own code.
README_PRELUDE = """\
import wattmeter
def train_one_epoch() -> None: ...
def train() -> None: ...
"""


def mypy(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    ini = tmp_path / "mypy.ini"
    ini.write_text(MYPY_INI)
    # run from tmp_path: the installed package is checked, not the source tree
    return subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(ini),
                           "--cache-dir", str(tmp_path / ".mypy_cache"), *args],
                          cwd=tmp_path, capture_output=True, text=True, timeout=600)


def test_mypy_strict_on_the_package(tmp_path):
    p = mypy(tmp_path, "-p", "wattmeter")
    assert p.returncode == 0, p.stdout + p.stderr


def test_stubtest_finds_the_stubs_in_step_with_the_runtime(tmp_path):
    ini = tmp_path / "mypy.ini"
    ini.write_text(MYPY_INI)
    p = subprocess.run([sys.executable, "-m", "mypy.stubtest", "--mypy-config-file", str(ini), "wattmeter"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr


def test_star_import_gives_the_public_names(tmp_path):
    code = tmp_path / "star.py"
    code.write_text("from wattmeter import *\n"
                    "m = Meter()\n"
                    "r: Results = load('x')\n"
                    "d = sensors()\n"
                    "v: str = __version__\n")
    p = mypy(tmp_path, str(code))
    assert p.returncode == 0, p.stdout + p.stderr


def test_mypy_strict_on_the_readme_python_examples(tmp_path):
    blocks = re.findall(r"^```python\n(.*?)^```", (REPO / "README.md").read_text(), flags=re.S | re.M)
    assert blocks, "README.md has no ```python block"
    for i, b in enumerate(blocks):
        f = tmp_path / f"readme_{i}.py"
        f.write_text(README_PRELUDE + b)
        p = mypy(tmp_path, str(f))
        assert p.returncode == 0, f"README python block {i}:\n{b}\n{p.stdout}{p.stderr}"
