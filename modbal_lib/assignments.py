"""Graded assignments: student versions and autograders made with Otter-Grader, and their checks.

The assignments are jupytext pairs in ``chapters/assignments/`` (``aN_slug.py`` is the source,
``aN_slug.ipynb`` its notebook), written in Otter-Grader's notebook format: a raw
``# ASSIGNMENT CONFIG`` cell, then per question ``# BEGIN QUESTION`` ... ``# END QUESTION``
around the prompt, a ``# BEGIN SOLUTION`` block and a ``# BEGIN TESTS`` block whose test cells
are public unless their first line is ``# HIDDEN``. ``otter assign`` turns each one into a
student notebook (solutions replaced by ``...``, public tests only) and an autograder zip
(every test). The tests are exception-based (``tests: ok_format: false``): a test cell defines
a function whose arguments are looked up by name in the student's notebook, and calls it.

Using the kit in a classroom
----------------------------

*What students need installed.* Python 3.10 or newer, this kit and Otter-Grader. From a clone
of the repository, ``make install-test`` creates ``.venv`` with both (or ``pip install -e
".[test]"`` in an environment of their own; conda users: ``conda env create -f environment.yml``
then ``pip install -e . --no-deps``). Then ``.venv/bin/jupyter lab``. Everything runs on a laptop
CPU; no GPU, no Docker and no network are needed once installed.

*Generate.* ``make assignments`` (or ``python -m modbal_lib assignments --out dist/assignments``,
optionally followed by assignment names such as ``a1_projection``) writes for each assignment

- ``dist/assignments/<name>/student/<name>.ipynb``: the notebook to hand out, and
- ``dist/assignments/<name>/autograder/``: the solutions notebook and
  ``<name>-autograder_<timestamp>.zip`` with every test, public and hidden. Keep this folder to
  yourself.

Before writing anything it runs every test against the solutions (in a fresh kernel, stopping at
any error), so a broken assignment never reaches students.

*Distribute.* Hand out the student notebook (learning platform, e-mail, a shared folder). Students
open it inside the repository (or anywhere the kit is installed), fill in every ``...``, and run
the ``grader.check("question")`` cell after each question: it runs the public tests and says which
fail. Hidden tests are used for grading only.

*Collect.* Students run the whole notebook once more (Kernel > Restart Kernel and Run All
Cells), save it and hand in the ``.ipynb`` file. (While they work the file keeps its name: the
check cells read their tests from it. For grading, any name will do: save each submission as
``submissions/<student>.ipynb``.)

*Grade locally without Docker.* ``otter run`` executes one submission with the autograder zip
in your own environment and writes ``results.json`` (the score per question, with the message of
every failed test)::

    mkdir -p grades/alice
    .venv/bin/otter run -a dist/assignments/a1_projection/autograder/a1_projection-autograder_*.zip \\
        -o grades/alice submissions/alice.ipynb

For a folder of submissions, loop over them (one ``grades/<student>/results.json`` each)::

    for f in submissions/*.ipynb; do
        s=$(basename "$f" .ipynb); mkdir -p "grades/$s"
        .venv/bin/otter run -a dist/assignments/a1_projection/autograder/*.zip -o "grades/$s" "$f"
    done

From Python, ``modbal_lib.assignments.grade(submission, autograder_zip)`` returns
``{question: (score, max_score)}``. A notebook handed in for another assignment is refused with a
message naming both assignments. ``otter run`` runs the student's code with your rights and no
sandbox: grade untrusted submissions in a throwaway account, container or virtual machine.
(Otter's Docker-based ``otter grade`` and Gradescope uploads would need the kit installed in the
grading image; the kit does not set that up.)

*Write your own.* Copy one of ``chapters/assignments/*.py``, edit it (keep the one cell tagged
``parameters`` with ``FAST = modbal_lib.fast_mode()``), run ``jupytext --sync`` on it, and add a
typical wrong answer for it to ``WRONG_ANSWERS`` in ``tests/test_assignments.py``. Those tests
(``python -m pytest tests/test_assignments.py``) generate every assignment, grade the solutions
(full marks), check that the student versions hold no solution code and no hidden tests, and grade
a submission with the wrong answer (fewer points on that question, full marks on the others).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from modbal_lib.book import pair_problems
from modbal_lib.utils import atomic_path

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS_DIR = ROOT / "chapters" / "assignments"
SOLUTION_TAG = "otter_assign_solution_cell"  # Otter's tag on solution cells of the autograder notebook
ANSWER_TAG = "otter_answer_cell"  # ... and on the matching cells of the student notebook
CHECK_CELL = re.compile(r"""grader\.check\(["'](?P<question>[^"']+)["']\)""")


@dataclass
class GeneratedAssignment:
    """What ``otter assign`` made of one assignment."""

    name: str
    student: Path  # <out>/<name>/student/<name>.ipynb: hand this out
    solution: Path  # <out>/<name>/autograder/<name>.ipynb: the solutions, keep private
    autograder: Path  # <out>/<name>/autograder/<name>-autograder_<timestamp>.zip: every test


def find_assignments(directory: Path = ASSIGNMENTS_DIR) -> list[Path]:
    """The assignment notebooks (``aN_slug.ipynb``) in order."""
    return sorted(directory.glob("*.ipynb"))


def otter(*args: str | os.PathLike) -> str:
    """Run the Otter-Grader command line with this interpreter; returns its output, raises on failure.

    The kernels Otter starts inherit a PYTHONPATH that begins with this checkout, so the
    notebooks import this ``modbal_lib`` even where the kit is not installed.
    """
    if importlib.util.find_spec("otter") is None:
        raise RuntimeError("otter-grader is not installed: run `make install-test` (or `pip install -e \".[test]\"`)")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "otter", *map(str, args)]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise RuntimeError(f"`otter {' '.join(map(str, args))}` failed (exit {done.returncode}):\n{output[-3000:]}")
    return output


def generate(master: Path, out_dir: Path, *, run_tests: bool = True) -> GeneratedAssignment:
    """``otter assign`` one assignment into ``out_dir/<name>/{student,autograder}``.

    Refuses a notebook out of sync with its ``.py`` source. With ``run_tests`` Otter grades the
    solutions notebook with the new autograder in a fresh kernel and fails unless it gets full
    marks (``--debug``: any error in any cell fails too). The result replaces ``out_dir/<name>``
    only once complete.
    """
    master = Path(master).resolve()
    problems = pair_problems(master.with_suffix(".py")) if master.with_suffix(".py").exists() else []
    if problems:
        raise ValueError("; ".join(problems))
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / master.stem
    staging = Path(tempfile.mkdtemp(dir=out_dir, prefix=f".{master.stem}."))
    try:
        otter("assign", "--no-pdfs", "--debug", *([] if run_tests else ["--no-run-tests"]), master, staging)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    zips = sorted((target / "autograder").glob(f"{master.stem}-autograder_*.zip"))
    if len(zips) != 1:
        raise RuntimeError(f"expected one autograder zip in {target / 'autograder'}, found {[z.name for z in zips]}")
    return GeneratedAssignment(master.stem, target / "student" / master.name,
                               target / "autograder" / master.name, zips[0])


def grade(submission: Path, autograder: Path) -> dict[str, tuple[float, float]]:
    """Grade one submitted notebook locally, without Docker (``otter run``): {question: (score, max_score)}."""
    with tempfile.TemporaryDirectory() as results_dir:
        otter("run", "--no-logo", "-a", autograder, "-o", results_dir, submission)
        results = json.loads((Path(results_dir) / "results.json").read_text())
    return {test["name"]: (test["score"], test["max_score"]) for test in results["tests"] if "max_score" in test}


def answer_cells(student: nbformat.NotebookNode) -> dict[int, str]:
    """{cell index: question} for each answer cell of a student notebook (the next check cell names it)."""
    answers, pending = {}, []
    for index, cell in enumerate(student.cells):
        if ANSWER_TAG in cell.metadata.get("tags", []):
            pending.append(index)
        elif cell.cell_type == "code" and (match := CHECK_CELL.search(cell.source)):
            answers.update({i: match["question"] for i in pending})
            pending = []
    return answers


def submission_with(generated: GeneratedAssignment, answers: dict[str, str], path: Path) -> Path:
    """Write a submission: the student notebook with every answer cell filled in with its solution,
    except for the questions in ``answers`` ({question: code}), whose one answer cell gets that code.

    For trying the autograder on the mistakes you expect students to make.
    """
    student = nbformat.read(generated.student, as_version=4)
    solution = nbformat.read(generated.solution, as_version=4)
    if len(student.cells) != len(solution.cells):
        raise ValueError(f"{generated.student} has {len(student.cells)} cells, {generated.solution} "
                         f"{len(solution.cells)}: not the two versions of one assignment")
    questions = answer_cells(student)
    for question in answers:
        cells = [i for i, q in questions.items() if q == question]
        if len(cells) != 1:
            raise ValueError(f"{generated.name}: question {question!r} has {len(cells)} answer cells; expected one "
                             f"(questions with answer cells: {sorted(set(questions.values()))})")
    for index, question in questions.items():
        student.cells[index].source = answers.get(question, solution.cells[index].source)
    with atomic_path(path) as tmp:
        nbformat.write(student, tmp)
    return Path(path)


def hidden_tests(autograder: Path) -> dict[str, list[str]]:
    """{question: names of its hidden test functions}, read from the autograder zip."""
    from otter.test_files import ExceptionTestFile

    hidden = {}
    with zipfile.ZipFile(autograder) as archive:
        for name in archive.namelist():
            if name.startswith("tests/") and name.endswith(".py"):
                tests = ExceptionTestFile.from_string(archive.read(name).decode(), name)
                hidden[tests.name] = [case.body.test_func.__name__ for case in tests.test_cases if case.hidden]
    return hidden


def solution_lines(source: str) -> set[str]:
    """The lines of a solution cell that Otter takes out of the student version (stripped).

    Those from ``# BEGIN SOLUTION`` to ``# END SOLUTION`` (markers included) and those ending
    in ``# SOLUTION``.
    """
    lines, inside = set(), False
    for line in map(str.strip, source.splitlines()):
        inside = inside or line.startswith("# BEGIN SOLUTION")
        if inside or line.endswith("# SOLUTION"):
            lines.add(line)
        inside = inside and not line.startswith("# END SOLUTION")
    return lines - {""}


def student_version_problems(generated: GeneratedAssignment) -> list[str]:
    """What must not be in a student version: solution lines, solution markers, hidden tests.

    The solution lines of every solution cell of the solutions notebook (``solution_lines``) must
    appear nowhere in the student notebook, and a solution cell without any would be handed out
    whole. Hidden tests (from the autograder zip) must not appear in the student notebook nor in
    any other file of the student folder; the tests in the notebook's metadata must all be public.
    """
    from otter.test_files import ExceptionTestFile

    student = nbformat.read(generated.student, as_version=4)
    solution = nbformat.read(generated.solution, as_version=4)
    student_lines = {line.strip() for cell in student.cells for line in cell.source.splitlines()}
    problems = []
    for index, cell in enumerate(solution.cells):
        if SOLUTION_TAG not in cell.metadata.get("tags", []):
            continue
        removed = solution_lines(cell.source)
        if not removed:
            problems.append(f"{generated.solution}: solution cell {index} marks no solution lines (students get it whole)")
        problems += [f"{generated.student}: solution line {line!r} is in the student notebook"
                     for line in sorted(removed & student_lines)]
    markers = [line for line in student_lines if re.search(r"#\s*(BEGIN|END)?\s*SOLUTION\b", line)]
    problems += [f"{generated.student}: solution marker {line!r}" for line in markers]

    files = [p for p in generated.student.parent.rglob("*") if p.is_file()]
    for question, names in hidden_tests(generated.autograder).items():
        for name in names:
            problems += [f"{path}: holds hidden test {name} of {question}" for path in files
                         if re.search(rf"\bdef {name}\(", path.read_text(errors="replace"))]
    for question, text in student.metadata.get("otter", {}).get("tests", {}).items():
        tests = ExceptionTestFile.from_string(text, question)
        problems += [f"{generated.student}: test {case.body.test_func.__name__} of {question} is hidden"
                     for case in tests.test_cases if case.hidden]
    return problems
