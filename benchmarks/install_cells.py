"""Write every chapter's Colab install cell from one place: the repository URL in ``_config.yml``
and the version in ``pyproject.toml``.

Each chapter opens with a hidden cell (tags ``skip-execution``, ``nbval-skip``, ``remove-cell``)
that installs the book's library at the book's version, the tag ``v<version>`` of the
repository. A reader running a checkout already has the library, so the cell runs only where a
chapter is opened on its own (Colab). ``tests/test_install_cells.py`` checks that every chapter
agrees with this script; after changing the URL or the version, run from the repository root::

    python benchmarks/install_cells.py
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TAGS = ["skip-execution", "nbval-skip", "remove-cell"]


def _setting(path: Path, pattern: str, missing: str) -> str:
    """The first group of ``pattern`` (a multi-line regex) in the file ``path``; ``missing``
    is the message of the ``ValueError`` when the file has no match."""
    match = re.search(pattern, path.read_text(), re.M)
    if match is None:
        raise ValueError(missing)
    return match.group(1)


def repository_url(root: Path = ROOT) -> str:
    """``repository: url:`` of ``_config.yml`` (read without a YAML parser: one plain line)."""
    return _setting(
        root / "_config.yml",
        r"^repository:\s*\n(?:[ \t]+.*\n)*?[ \t]+url:\s*(\S+)",
        "_config.yml has no repository: url: line",
    )


def version(root: Path = ROOT) -> str:
    """``version`` of the ``[project]`` table of ``pyproject.toml``."""
    return _setting(
        root / "pyproject.toml",
        r'^\[project\]\s*\n(?:(?!\[).*\n)*?version\s*=\s*"([^"]+)"',
        "pyproject.toml has no version in its [project] table",
    )


def install_cell_source(root: Path = ROOT) -> str:
    """The source of the install cell every chapter opens with."""
    return (
        "# Colab only: install the book's library at this book's version (a local\n"
        "# checkout already has it). The trained models come with it.\n"
        f'%pip install -q "vae_lib[notebooks] @ git+{repository_url(root)}@v{version(root)}"'
    )


def install_cells(notebook: dict) -> list[dict]:
    """The code cells of ``notebook`` that ``%pip install`` the library."""
    return [
        c
        for c in notebook["cells"]
        if c["cell_type"] == "code" and "%pip install" in "".join(c["source"])
    ]


def main() -> None:
    source = install_cell_source()
    for path in sorted((ROOT / "chapters").glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        cells = install_cells(notebook)
        if len(cells) != 1:
            raise SystemExit(f"{path}: {len(cells)} install cells, expected 1")
        lines = source.split("\n")
        cells[0]["source"] = [line + "\n" for line in lines[:-1]] + [lines[-1]]
        cells[0]["metadata"]["tags"] = TAGS
        path.write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
        print(f"{path.name}: {source.splitlines()[-1]}")


if __name__ == "__main__":
    main()
