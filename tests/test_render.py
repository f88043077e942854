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


# ---------------------------------------------------------------- this environment's exporter, its result checked
FOREIGN_OUTPUT = "<html><body>rendered by another nbconvert!!</body></html>\n"  # 58 bytes, as the reported file


@pytest.fixture
def foreign_nbconvert(tmp_path, monkeypatch):
    """A `jupyter-nbconvert` (and `jupyter`) first on PATH, as a conda environment or a cluster module puts
    them: whatever it is asked, it prints FOREIGN_OUTPUT and succeeds."""
    bin_dir = tmp_path / "foreign-bin"
    bin_dir.mkdir()
    for name in ("jupyter-nbconvert", "jupyter"):
        script = bin_dir / name
        script.write_text(f"#!/bin/sh\nprintf '%s' '{FOREIGN_OUTPUT.strip()}'; echo\n")
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{__import__('os').pathsep}{__import__('os').environ['PATH']}")
    assert len(FOREIGN_OUTPUT.encode()) == 58
    return bin_dir


def test_the_report_is_exported_by_this_environments_nbconvert_whatever_is_first_on_path(tmp_path, foreign_nbconvert):
    """The reported case: a `jupyter-nbconvert` earlier on PATH made study.html its 58-byte output and the rule
    succeeded. Now the HTML is this environment's export: a whole document with the title and the output."""
    (tmp_path / "out.html").write_text("previous report")
    nb = notebook(tmp_path / "n.ipynb", "print('the study says', x)")
    render.render(nb, tmp_path / "out.ipynb", tmp_path / "out.html", {"x": 7}, title="Study & co")
    html = (tmp_path / "out.html").read_text()
    assert "rendered by another nbconvert" not in html and len(html) > 10_000
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>")
    assert "<title>Study &amp; co</title>" in html and "the study says 7" in html


def test_an_export_that_is_not_the_report_is_refused_and_the_previous_report_kept(tmp_path, monkeypatch):
    """Whatever the exporter gives is checked before it replaces the report: a 58-byte page is refused, naming
    its size and what it lacks."""
    (tmp_path / "out.html").write_text("previous report")
    monkeypatch.setattr(render, "export_html", lambda node: FOREIGN_OUTPUT)
    nb = notebook(tmp_path / "n.ipynb", "print('hello')")
    with pytest.raises(render.RenderError, match=r"not rendered: the HTML export is not the report \(58 bytes: no "
                                                 r"<!DOCTYPE html> at its start; no <title>T</title>; 0 output areas "
                                                 r"for the notebook's 1 outputs\); the previous report is kept"):
        render.render(nb, tmp_path / "out.ipynb", tmp_path / "out.html", {}, title="T")
    assert (tmp_path / "out.html").read_text() == "previous report"


@pytest.mark.parametrize("cut, problem", [
    (lambda html: html.replace("</html>", ""), "no </html> at its end"),
    (lambda html: html.replace("<title>T</title>", "<title>Notebook</title>"), "no <title>T</title>"),
    (lambda html: html.replace(render.OUTPUT_AREA, "<div class=\"other", 1), "1 output areas for the notebook's 2"),
], ids=["truncated", "other-title", "an-output-missing"])
def test_check_html_names_what_the_document_lacks(cut, problem):
    nb = nbformat.v4.new_notebook()
    nb.metadata["title"] = "T"
    nb.cells = [nbformat.v4.new_code_cell("1", outputs=[nbformat.v4.new_output("stream", text="a\n"),
                                                        nbformat.v4.new_output("stream", name="stderr", text="b\n")])]
    html = render.export_html(nb)
    render.check_html(html, nb, "T")  # the whole export passes
    with pytest.raises(render.RenderError, match=problem):
        render.check_html(cut(html), nb, "T")


def test_the_export_uses_this_environments_templates_whatever_is_on_jupyter_path(tmp_path, monkeypatch):
    """The same kind on JUPYTER_PATH: a cluster module's (or ~/.local's) nbconvert templates folder with its own
    `lab` template, which the report's `offline` template extends, would render the report (nbconvert searches
    JUPYTER_PATH before this environment's share/jupyter). The export takes the templates installed with the
    nbconvert it imports."""
    lab = tmp_path / "foreign" / "nbconvert" / "templates" / "lab"
    lab.mkdir(parents=True)
    (lab / "conf.json").write_text(json.dumps({"base_template": "base", "mimetypes": {"text/html": True}}))
    (lab / "index.html.j2").write_text("<html>foreign lab template</html>\n")
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "foreign"))
    nb = notebook(tmp_path / "n.ipynb", "print('from this environment', x)")
    render.render(nb, tmp_path / "out.ipynb", tmp_path / "out.html", {"x": 3}, title="T")
    html = (tmp_path / "out.html").read_text()
    assert "foreign lab template" not in html and "from this environment 3" in html and "<title>T</title>" in html
