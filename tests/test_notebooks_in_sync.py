"""The notebooks' two files agree: notebooks/NN_name.py (jupytext percent script, the reviewed
source) and NN_name.ipynb (rendered with outputs, what a repository page shows).

Re-render after editing a script: ``python notebooks/render.py NN``. Running the notebooks
themselves is a separate job: ``pytest --nbmake notebooks/``.
"""

import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SCRIPTS = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.py"))


def _cells(cells, kind):
    return [c.source if isinstance(c.source, str) else "".join(c.source)
            for c in cells if c.cell_type == kind]


def test_there_are_notebooks():
    assert SCRIPTS, f"no notebooks/NN_name.py scripts found in {NOTEBOOKS}"


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_script_and_notebook_in_sync(script):
    jupytext = pytest.importorskip("jupytext", reason="needs the notebooks extra (jupytext)")
    ipynb = script.with_suffix(".ipynb")
    assert ipynb.exists(), f"{ipynb.name} is missing: run python notebooks/render.py {script.name[:2]}"
    from_script = jupytext.read(script)
    rendered = jupytext.read(ipynb)
    for kind in ("code", "markdown"):
        a, b = _cells(from_script.cells, kind), _cells(rendered.cells, kind)
        assert len(a) == len(b), (
            f"{script.name} has {len(a)} {kind} cells, {ipynb.name} {len(b)}: re-render it")
        for i, (x, y) in enumerate(zip(a, b)):
            assert x.strip() == y.strip(), (
                f"{kind} cell {i} differs between {script.name} and {ipynb.name}: re-render it\n"
                f"--- script:\n{x}\n--- notebook:\n{y}")


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_notebook_is_rendered_for_python3(script):
    ipynb = script.with_suffix(".ipynb")
    if not ipynb.exists():
        pytest.skip(f"{ipynb.name} is missing (reported by the sync test)")
    nb = json.loads(ipynb.read_text(encoding="utf-8"))
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(c.get("execution_count") for c in code), \
        f"{ipynb.name} has unexecuted cells: re-render it with python notebooks/render.py"
    assert any(c.get("outputs") for c in code), f"{ipynb.name} has no outputs"
