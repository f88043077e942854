"""The report's build step (SPEC §2.6): papermill runs the notebook (report/study.ipynb) in this
environment's interpreter, and nbconvert exports it to self-contained HTML without code.

Three things are deliberate (issue 27.7, papermill#625; issue 37.9, nbconvert#1482):
- The kernel is this interpreter (`sys.executable`), whatever kernelspecs exist: a kernelspec of its own,
  under a private name, is written to a temporary folder put first on JUPYTER_PATH for the render. A
  `python3` kernelspec of another environment (as cluster Jupyter modules install) is never used.
- The export is nbconvert imported as a library in this interpreter (`export_html`), not a command: `python
  -m jupyter nbconvert` runs whatever `jupyter-nbconvert` comes first on PATH (jupyter_core appends this
  environment's scripts folder at the end of PATH, so a conda or cluster module's program wins), and one such
  program's 58-byte output once became the report. Its templates are those installed with that nbconvert,
  not a `lab` template that JUPYTER_PATH or ~/.local puts first in nbconvert's search.
- The report is checked, then replaced atomically: the HTML must be a whole HTML document with the notebook's
  title and one output area per output of the executed notebook (`check_html`); the executed notebook and
  the HTML are written beside their targets and renamed only when both succeeded, so a failed render keeps
  the previous report and says why (`RenderError`). The report rule marks both outputs `update`, so
  Snakemake neither deletes them before the job nor leaves them deleted after a failure.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import html as html_text
import importlib.metadata
import json
import os
import sys
import tempfile
from pathlib import Path

from optimbench.io import atomic_path
from optimbench.report import default_title
from optimbench.runs import read_plan

# nbconvert template folder: JupyterLab's HTML without scripts from CDNs (the report works offline).
TEMPLATES = Path(__file__).resolve().parents[2] / "report" / "templates"


class RenderError(RuntimeError):
    """The report could not be rendered; the message says why and that the previous report is kept."""


def kernel_name(executable: str = sys.executable) -> str:
    """The private kernelspec's name for an interpreter: `optimbench-` + 8 hex digits of its path's SHA-256
    (no other environment's kernelspec can carry it)."""
    return "optimbench-" + hashlib.sha256(executable.encode()).hexdigest()[:8]


@contextlib.contextmanager
def this_interpreters_kernel():
    """While the block runs, a kernelspec that starts `sys.executable -m ipykernel_launcher` lies in a
    temporary folder first on JUPYTER_PATH (jupyter_client searches JUPYTER_PATH before the user's and the
    system's folders); yields its name. JUPYTER_PATH is restored afterwards."""
    name = kernel_name()
    before = os.environ.get("JUPYTER_PATH")
    with tempfile.TemporaryDirectory(prefix="optimbench-kernel-") as folder:
        spec_dir = Path(folder) / "kernels" / name
        spec_dir.mkdir(parents=True)
        (spec_dir / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": f"optimbench ({sys.executable})", "language": "python"}))
        os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (folder, before) if p)
        try:
            yield name
        finally:
            if before is None:
                os.environ.pop("JUPYTER_PATH", None)
            else:
                os.environ["JUPYTER_PATH"] = before


OUTPUT_AREA = '<div class="jp-OutputArea-child'  # how nbconvert's lab template (ours: offline) opens each output


@functools.cache
def nbconvert_data_dir() -> Path:
    """The share/jupyter folder installed with the nbconvert this interpreter imports (its templates: lab,
    classic, base), found from the distribution's own file list (a venv's, a conda env's or ~/.local's)."""
    dist = importlib.metadata.distribution("nbconvert")
    conf = next((f for f in dist.files or () if f.as_posix().endswith("nbconvert/templates/lab/conf.json")), None)
    if conf is None:  # an install without a file list: the interpreter's own prefix
        return Path(sys.prefix, "share", "jupyter")
    return Path(dist.locate_file(conf)).resolve().parents[3]


def export_html(notebook_node) -> str:
    """The notebook as self-contained HTML without code (the `offline` template: JupyterLab's, no CDN
    scripts), by nbconvert's HTMLExporter in this interpreter: what `jupyter nbconvert --to html --no-input
    --template offline` gives, without asking PATH which program that is, and with the templates installed
    with this nbconvert (nbconvert_data_dir), not the first `lab` template on JUPYTER_PATH or in ~/.local
    (nbconvert's own search order puts those first)."""
    from nbconvert import HTMLExporter

    class ThisEnvironmentsHTMLExporter(HTMLExporter):
        def get_prefix_root_dirs(self):
            return [str(nbconvert_data_dir())]

    exporter = ThisEnvironmentsHTMLExporter(
        template_name="offline", extra_template_basedirs=[str(TEMPLATES)], template_data_paths=[],
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(notebook_node)
    return body


def check_html(document: str, notebook_node, title: str | None = None) -> None:
    """That `document` is the notebook's report: a whole HTML document (<!DOCTYPE html> ... </html>) titled
    `title` (HTML-escaped, when given), with at least one output area per output of the executed notebook.

    Raises:
        RenderError: naming what is missing and the document's size.
    """
    outputs = sum(len(cell.get("outputs", [])) for cell in notebook_node.cells)
    text = document.strip()
    problems = [what for what, ok in (
        ("no <!DOCTYPE html> at its start", text[:15].lower() == "<!doctype html>"),
        ("no </html> at its end", text.lower().endswith("</html>")),
        (f"no <title>{title}</title>", title is None or f"<title>{html_text.escape(title)}</title>" in text),
        (f"{text.count(OUTPUT_AREA)} output areas for the notebook's {outputs} outputs",
         text.count(OUTPUT_AREA) >= outputs)) if not ok]
    if problems:
        raise RenderError(f"the HTML export is not the report ({len(document.encode())} bytes: "
                          f"{'; '.join(problems)})")


def _why(exc: BaseException) -> str:
    """A failed render in one line: the notebook's error (papermill names the cell's exception), or what the
    export lacks."""
    if isinstance(exc, RenderError):
        return str(exc)
    if hasattr(exc, "ename"):  # papermill.PapermillExecutionError: a cell raised
        return f"a notebook cell raised {exc.ename}: {exc.evalue}"
    return f"{type(exc).__name__}: {exc}"


def render(notebook, executed, html_path, parameters: dict, title: str | None = None) -> None:
    """Execute the notebook with papermill in this interpreter's kernel and export it to self-contained HTML
    without code, titled `title`; `executed` and `html_path` are replaced only when both succeed.

    Raises:
        RenderError: a cell failed, the kernel did not start, or the export failed (the message says which,
            and that the previous files are kept).
    """
    import nbformat
    import papermill

    try:
        with this_interpreters_kernel() as kernel, atomic_path(executed) as tmp_nb:
            papermill.execute_notebook(str(notebook), str(tmp_nb), parameters=parameters, kernel_name=kernel,
                                       progress_bar=False, cwd=Path.cwd())
            executed_nb = nbformat.read(tmp_nb, as_version=4)
            if title:  # the HTML's <title> (nbconvert's lab template reads the notebook's metadata.title)
                executed_nb.metadata["title"] = title
                nbformat.write(executed_nb, tmp_nb)
            document = export_html(executed_nb)
            check_html(document, executed_nb, title)
            with atomic_path(html_path) as tmp_html:
                tmp_html.write_text(document, encoding="utf-8")
    except Exception as exc:
        kept = "the previous report is kept" if Path(html_path).exists() else "there was no previous report"
        raise RenderError(f"report {html_path} not rendered: {_why(exc)}; {kept}") from exc


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Execute the report notebook and export it to HTML.")
    parser.add_argument("--notebook", required=True)
    parser.add_argument("--executed", required=True, help="executed .ipynb to write")
    parser.add_argument("--html", required=True, help="HTML report to write")
    parser.add_argument("--parameters", required=True, help="notebook parameters as JSON")
    args = parser.parse_args(argv)
    parameters = json.loads(args.parameters)
    title = None
    if "plan_file" in parameters:
        plan = read_plan(parameters["plan_file"])
        title = plan.settings.get("title") or default_title(plan.problems, plan.settings["train"]["optimizers"],
                                                            plan.descent_functions())
    try:
        render(args.notebook, args.executed, args.html, parameters, title)
    except RenderError as exc:
        raise SystemExit(f"error: {exc}") from exc
    print(f"report: {args.html}")


if __name__ == "__main__":
    main()
