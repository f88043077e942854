"""The report's render: this interpreter's kernel whatever kernelspecs exist, and an atomic replace
(issue 27.7, papermill#625)."""

import json
import sys

import nbformat
import pytest

from optimbench import render


def notebook(path, *sources):
    """A notebook with a `parameters` cell (papermill's) and the given code cells."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell("x = 0", metadata={"tags": ["parameters"]}),
                *(nbformat.v4.new_code_cell(source) for source in sources)]
    nbformat.write(nb, path)
    return path


@pytest.fixture
def foreign_python3(tmp_path, monkeypatch):
    """A `python3` kernelspec of another environment on JUPYTER_PATH, as a cluster's Jupyter module sets it:
    its interpreter has no pandas."""
    spec = tmp_path / "jupyter" / "kernels" / "python3"
    spec.mkdir(parents=True)
    no_pandas = ("import sys; sys.modules['pandas'] = None; "
                 "from ipykernel.kernelapp import launch_new_instance; launch_new_instance()")
    (spec / "kernel.json").write_text(json.dumps({"argv": [sys.executable, "-c", no_pandas, "-f", "{connection_file}"],
                                                  "display_name": "Python 3", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return spec


def test_the_notebook_runs_in_this_interpreter_whatever_python3_kernel_is_on_jupyter_path(tmp_path, foreign_python3):
    nb = notebook(tmp_path / "n.ipynb", "import pandas, sys\nprint('kernel:', sys.executable, pandas.__name__, x)")
    render.render(nb, tmp_path / "out.ipynb", tmp_path / "out.html", {"x": 41}, title="T")
    html = (tmp_path / "out.html").read_text()
    assert f"kernel: {sys.executable} pandas 41" in html and "<title>T</title>" in html
    assert str(tmp_path / "jupyter") == __import__("os").environ["JUPYTER_PATH"]  # restored


def test_a_failed_render_keeps_the_previous_report_and_says_why(tmp_path, capsys):
    (tmp_path / "out.html").write_text("previous report")
    (tmp_path / "out.ipynb").write_text("previous notebook")
    nb = notebook(tmp_path / "n.ipynb", "raise ValueError('table x is missing')")
    with pytest.raises(SystemExit, match=r"not rendered: a notebook cell raised ValueError: table x is missing; "
                                         r"the previous report is kept"):
        render.main(["--notebook", str(nb), "--executed", str(tmp_path / "out.ipynb"),
                     "--html", str(tmp_path / "out.html"), "--parameters", "{}"])
    assert (tmp_path / "out.html").read_text() == "previous report"
    assert (tmp_path / "out.ipynb").read_text() == "previous notebook"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["n.ipynb", "out.html", "out.ipynb"]  # no temp files left
