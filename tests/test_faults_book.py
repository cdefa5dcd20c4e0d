"""Fault injection for the book command (``python -m modbal_lib book``, papermill): a cell that hangs,
a cell that fails, and the labs' panels, which once made papermill wait forever in chapter 3.

The panel hang: nbclient (under papermill) answers every output an ipywidgets Output widget captures
with a message on the kernel's shell channel; when one crossed the cell's reply, the client missed the
reply and waited for it until the cell timeout (forever without one). The reply was in hand all along,
so the hang does not show as an error: it shows as a reply that reached the client long after the
kernel sent it. ``late_replies`` measures that gap in the executed notebook. The race is rare on an
idle machine, so one test also injects a slow client (each answer waits half a second, so the reply
has always arrived when it is sent), which made every Taylor panel hang before the fix.
"""

import json
import time
from datetime import datetime

import nbformat
import pytest
from nbclient import output_widget

from modbal_lib import book, cli
from modbal_lib.book import Chapter, ChapterError, build, execute

# The panels' notebook: import, then each panel as the chapters call it, CALLS times in turn, then
# print. Measured on 2 busy CPU cores: a run takes 6-8 s to start its kernel and import the library,
# a Taylor panel 2-4 s (it draws at once), a see-saw or method panel well under a second (they train
# on Run, so they never drew during their cell). With the panels before the fix, 4 of 16 papermill
# runs of [import, taylor_panel(), print] hung, and 7 of 144 Taylor panels in longer notebooks (the
# busier the machine, the more); with a slow client, 6 of 6. Since the fix: 0 of 10, 0 of 96, 0 of 6.
IMPORT = "from modbal_lib.whatif import method_panel, seesaw_panel, taylor_panel"
PANELS = ("taylor_panel()", "seesaw_panel()", "method_panel('goal', 'seesaw')")
CALLS = 4          # each panel's calls per run (3 with the slow client)
RUNS = 3           # papermill runs (1 with the slow client)
CELL_TIMEOUT = 30  # seconds per cell; a hung cell costs this much
LATE = 10          # seconds: a reply that reached papermill this long after the kernel sent it was missed


def notebook(*sources: str) -> nbformat.NotebookNode:
    """A notebook of these code cells, after a title and a ``parameters`` cell (as a chapter has)."""
    parameters = nbformat.v4.new_code_cell("FAST = False")
    parameters.metadata["tags"] = ["parameters"]
    cells = [nbformat.v4.new_markdown_cell("# A tiny chapter"), parameters]
    result = nbformat.v4.new_notebook(cells=cells + [nbformat.v4.new_code_cell(source) for source in sources])
    result.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return result


def chapter_dir(tmp_path, **chapters: nbformat.NotebookNode):
    """A folder of chapters ``NN_slug.ipynb`` (keyword: file stem)."""
    folder = tmp_path / "chapters"
    folder.mkdir()
    for stem, content in chapters.items():
        nbformat.write(content, folder / f"{stem}.ipynb")
    return folder


def late_replies(executed: nbformat.NotebookNode) -> dict[int, float]:
    """{cell index: seconds between the kernel sending the cell's execute_reply and papermill ending the
    cell}, for the cells where that took ``LATE`` seconds or more (the reply sat unnoticed)."""
    def when(text):
        return datetime.fromisoformat(text.replace("Z", "+00:00"))

    gaps = {}
    for index, cell in enumerate(executed.cells):
        sent = cell.metadata.get("execution", {}).get("shell.execute_reply")
        ended = cell.metadata.get("papermill", {}).get("end_time")
        if sent and ended:
            gaps[index] = (when(ended) - when(sent)).total_seconds()
    return {index: round(gap, 1) for index, gap in gaps.items() if gap >= LATE}


def panel_hangs(tmp_path, runs: int, calls: int = CALLS) -> dict[int, dict[str, float]]:
    """Run the panels' notebook ``runs`` times through the book command's path (``book.execute``);
    returns {run: {the late cell's first line: seconds late}} for the runs that had a late reply."""
    source = notebook(IMPORT, *[call for _ in range(calls) for call in PANELS], 'print("done")')
    path = chapter_dir(tmp_path, **{"03_panels": source}) / "03_panels.ipynb"
    hangs = {}
    for run in range(runs):
        out = tmp_path / f"run{run}"
        out.mkdir()
        execute(Chapter(path, "panels"), out, fast=True, cell_timeout=CELL_TIMEOUT)
        executed = nbformat.read(out / path.name, as_version=4)
        assert executed.cells[-1].outputs[0]["text"] == "done\n"
        if late_replies(executed):
            hangs[run] = {f"cell {i}: {executed.cells[i].source}": gap for i, gap in late_replies(executed).items()}
        # the Taylor panels drew at once, into their output areas (the widget state the notebook keeps)
        states = executed.metadata.widgets["application/vnd.jupyter.widget-state+json"]["state"].values()
        drawn = [s["state"]["outputs"] for s in states if s["model_name"] == "OutputModel" and s["state"]["outputs"]]
        assert len(drawn) == calls and all(len(outputs) == 2 for outputs in drawn)
        assert all("image/png" in figure["data"] and text["text"].startswith("λ = 0.01, concat: predicted ΔL")
                   for figure, text in drawn)
    return hangs


@pytest.fixture
def kernel_figures(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")  # the kernel's, as in `make book`


def test_the_panels_never_hang_papermill(tmp_path, kernel_figures):
    hangs = panel_hangs(tmp_path, RUNS)
    assert hangs == {}, f"replies papermill noticed late (run: {{cell: seconds}}): {hangs}"


def test_the_panels_never_hang_a_slow_client(tmp_path, kernel_figures, monkeypatch):
    answer, answers = output_widget.OutputWidget.send, []

    def slow_answer(widget, *arguments, **options):  # the kernel's reply arrives while the client answers
        answers.append(arguments)
        time.sleep(0.5)
        return answer(widget, *arguments, **options)

    monkeypatch.setattr(output_widget.OutputWidget, "send", slow_answer)
    hangs = panel_hangs(tmp_path, runs=1, calls=3)
    assert hangs == {} and answers == []  # no output captured by a widget, so nothing for the client to answer


def test_a_hung_cell_fails_the_build_naming_chapter_and_cell(tmp_path):
    chapters = chapter_dir(tmp_path, **{"00_fine": notebook("x = 1"),
                                        "01_hangs": notebook("x = 1", "import time\ntime.sleep(60)", "y = 2")})
    build_dir = tmp_path / "_build"
    with pytest.raises(ChapterError) as error:
        build(fast=True, build_dir=build_dir, chapters_dir=chapters, cell_timeout=3)
    assert str(error.value).startswith("01_hangs.ipynb, cell 3 ('import time'): was still running after the "
                                       "cell timeout of 3 s")
    executed = build_dir / "executed"
    assert sorted(p.name for p in executed.iterdir()) == ["00_fine.ipynb", "fingerprints.json"]  # no partial notebook
    assert set(json.loads((executed / "fingerprints.json").read_text())) == {"00_fine"}  # 01_hangs runs again


def test_a_failing_cell_fails_the_book_command_with_one_line(tmp_path, monkeypatch, capsys):
    chapters = chapter_dir(tmp_path, **{"01_fails": notebook("x = 1", "# check the input\nraise ValueError('bad\\ninput')")})
    build_dir = tmp_path / "_build"
    (build_dir / "executed").mkdir(parents=True)
    (build_dir / "executed" / "fingerprints.json").write_text('{"01_fails": "an older run"}')
    monkeypatch.setattr(book, "build", lambda **options: build(chapters_dir=chapters, **options))
    assert cli.main(["book", "--fast", "--build-dir", str(build_dir)]) == 1
    message = capsys.readouterr().err.strip().splitlines()[-1]
    assert message == "error: 01_fails.ipynb, cell 3 ('# check the input'): raised ValueError: bad input"
    assert json.loads((build_dir / "executed" / "fingerprints.json").read_text()) == {}  # it will run again
    assert sorted(p.name for p in (build_dir / "executed").iterdir()) == ["fingerprints.json"]


def test_the_book_command_refuses_a_cell_timeout_that_is_not_positive(capsys):
    assert cli.main(["book", "--cell-timeout", "0"]) == 2
    assert "book --cell-timeout: expected a positive number of seconds, got 0" in capsys.readouterr().err
