"""Every chapter's Colab install cell is the one ``benchmarks/install_cells.py`` writes from
the repository URL in ``_config.yml`` and the version in ``pyproject.toml``."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("install_cells", ROOT / "benchmarks/install_cells.py")
install_cells = importlib.util.module_from_spec(spec)
spec.loader.exec_module(install_cells)
CHAPTERS = sorted((ROOT / "chapters").glob("*.ipynb"))


def test_the_install_line_pins_the_version_of_the_repository_in_the_config():
    source = install_cells.install_cell_source()
    url, version = install_cells.repository_url(), install_cells.version()
    assert url.startswith("https://") and version.count(".") == 2
    assert source.endswith(f'%pip install -q "vae_lib[notebooks] @ git+{url}@v{version}"')


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.stem for p in CHAPTERS])
def test_each_chapter_installs_the_book_at_its_version_and_only_on_colab(path):
    cells = install_cells.install_cells(json.loads(path.read_text()))
    assert len(cells) == 1, "one install cell per chapter"
    assert "".join(cells[0]["source"]) == install_cells.install_cell_source(), (
        "run python benchmarks/install_cells.py"
    )
    # never run by the book's build, by nbval or shown in the page
    assert set(cells[0]["metadata"]["tags"]) >= set(install_cells.TAGS)


def test_the_url_is_read_from_the_repository_section(tmp_path):
    (tmp_path / "_config.yml").write_text(
        "html:\n  url: https://wrong.example\nrepository:\n  path_to_book: ''\n"
        "  url: https://example.org/book\n  branch: main\n"
    )
    assert install_cells.repository_url(tmp_path) == "https://example.org/book"


def test_the_version_is_read_from_the_project_table(tmp_path):
    (tmp_path / "pyproject.toml").write_text(
        '[tool.other]\nversion = "9.9.9"\n\n[project]\nname = "vae_lib"\nversion = "1.2.3"\n'
    )
    assert install_cells.version(tmp_path) == "1.2.3"
