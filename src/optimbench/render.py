"""The report's build step (SPEC §2.6): papermill runs the notebook (report/study.ipynb) in this
environment's interpreter, and nbconvert exports it to self-contained HTML without code.

Two things are deliberate (issue 27.7, papermill#625):
- The kernel is this interpreter (`sys.executable`), whatever kernelspecs exist: a kernelspec of its own,
  under a private name, is written to a temporary folder put first on JUPYTER_PATH for the render. A
  `python3` kernelspec of another environment (as cluster Jupyter modules install) is never used.
- The report is replaced atomically: the executed notebook and the HTML are written beside their targets
  and renamed only when both succeeded, so a failed render keeps the previous report and says why
  (`RenderError`). The report rule marks both outputs `update`, so Snakemake neither deletes them before
  the job nor leaves them deleted after a failure.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import subprocess
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


def _why(exc: BaseException) -> str:
    """A failed render in one line: the notebook's error (papermill names the cell's exception), or
    nbconvert's exit status."""
    if isinstance(exc, subprocess.CalledProcessError):
        return f"the HTML export (jupyter nbconvert) failed with exit status {exc.returncode}"
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
            if title:  # the HTML's <title> (nbconvert's lab template reads the notebook's metadata.title)
                executed_nb = nbformat.read(tmp_nb, as_version=4)
                executed_nb.metadata["title"] = title
                nbformat.write(executed_nb, tmp_nb)
            with atomic_path(html_path) as tmp_html, open(tmp_html, "wb") as out:
                subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "html", "--no-input",
                                f"--TemplateExporter.extra_template_basedirs={TEMPLATES}", "--template", "offline",
                                "--stdout", str(tmp_nb)], stdout=out, check=True)
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
