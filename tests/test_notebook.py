"""notebooks/investigation.ipynb runs top to bottom, headless, in this interpreter; any cell error fails."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "investigation.ipynb"


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert nb.metadata.kernelspec.name == "python3"


def test_investigation_notebook_runs(tmp_path, monkeypatch):
    from ipykernel.kernelspec import install
    from jupyter_client.kernelspec import KernelSpecManager

    # A "python3" kernel spec for *this* interpreter, searched first (JUPYTER_PATH precedes the user's and the
    # system's kernels), so the notebook runs with the acctgraph under test even where another python3 kernel
    # is registered, and in a fresh virtual environment where none is.
    prefix = tmp_path / "jupyter"
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    install(kernel_name="python3", prefix=str(prefix))
    assert KernelSpecManager().get_kernel_spec("python3").argv[0] == sys.executable

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(nb, kernel_name="python3", timeout=300, allow_errors=False,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()  # raises CellExecutionError naming the failing cell

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    html = [o.data["text/html"] for o in outputs if o.output_type in ("display_data", "execute_result")
            and "text/html" in o.get("data", {})]
    assert any("<iframe sandbox" in h for h in html), "the interactive cluster view"
    assert any(h.startswith("<div><h4>acctgraph cluster") for h in html), "the cluster summary"
    assert any(h.startswith("<div><h4>Why ") for h in html), "the explanation"
    assert any("image/png" in o.get("data", {}) for o in outputs), "the timeline plot"
    text = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
    assert "files match manifest.json" in text and "precision 1.000" in text
