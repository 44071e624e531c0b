"""The Binder launch button: binder/ tells repo2docker how to build the book's environment."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"


def _requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def test_binder_installs_the_books_requirements_with_cpu_wheels():
    lines = _requirement_lines(BINDER / "requirements.txt")
    includes = [line.split(maxsplit=1)[1] for line in lines if line.startswith("-r ")]
    # pip resolves a nested -r relative to the file that names it
    assert [(BINDER / name).resolve() for name in includes] == [ROOT / "requirements.txt"]
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in lines
    # nothing else: a package pinned here would drift from the root requirements
    assert len(lines) == 2


def test_binder_python_matches_the_project():
    runtime = (BINDER / "runtime.txt").read_text().strip()
    match = re.fullmatch(r"python-(\d+)\.(\d+)", runtime)
    assert match, runtime
    pyproject = (ROOT / "pyproject.toml").read_text()
    requires = re.search(r'^requires-python\s*=\s*"([^"]+)"', pyproject, re.M).group(1)
    minimum = tuple(int(p) for p in re.search(r">=\s*(\d+)\.(\d+)", requires).groups())
    assert tuple(int(p) for p in match.groups()) >= minimum


def test_the_launch_buttons_point_at_the_configured_repository():
    config = (ROOT / "_config.yml").read_text()
    assert re.search(r'binderhub_url:\s*"https://mybinder.org"', config)
    assert re.search(r"^\s+url: https://github.com/[\w.-]+/[\w.-]+\s*$", config, re.M)
