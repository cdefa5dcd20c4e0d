"""The graded assignments: Otter-Grader makes student versions and autograders that grade correctly.

One module fixture generates every assignment (``otter assign``) and grades, locally without
Docker (``otter run``), the solutions notebook and a submission with one typical wrong answer;
the assignments run in parallel, each notebook in fast mode. The tests then read the outcome.
"""

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

pytest.importorskip("otter", reason="otter-grader is in the test extra: pip install -e '.[test]'")

from modbal_lib import cli  # noqa: E402
from modbal_lib.assignments import (  # noqa: E402
    GeneratedAssignment,
    answer_cells,
    find_assignments,
    generate,
    grade,
    hidden_tests,
    solution_lines,
    student_version_problems,
    submission_with,
)

# One typical mistake per assignment, in a question no other question builds on (only it may lose points).
WRONG_ANSWERS = {
    # |cos 120 deg| = 0.5 (the part removed) instead of sin 120 deg (the part kept): passes the public range check
    "a1_projection": ("q3_how_much_is_left", "kept_at_120 = 0.5\nkept_at_60 = 1.0\n"),
    # softmax of the mean confidence instead of the mean of per-sample softmaxes: right shape, sums to 1
    "a2_goal_weights": ("q2_weights", "def adaptive_weights(logits, T=1.0):\n"
                                      "    confidence = 1 - normalized_entropy(logits)\n"
                                      "    return torch.softmax(confidence.mean(0) / T, dim=0)\n"),
    # the default world, where easy dominates
    "a3_seesaw_dominance": ("q1_knobs", "knobs = {}\n"),
}


@dataclass
class Outcome:
    generated: GeneratedAssignment
    solution_scores: dict[str, tuple[float, float]]
    wrong_question: str
    wrong_scores: dict[str, tuple[float, float]]


def _generate_and_grade(master: Path, out_dir: Path) -> Outcome:
    generated = generate(master, out_dir, run_tests=False)  # the solutions are graded just below
    question, code = WRONG_ANSWERS[master.stem]
    wrong = submission_with(generated, {question: code}, out_dir / "wrong" / master.stem / master.name)
    return Outcome(generated, grade(generated.solution, generated.autograder), question,
                   grade(wrong, generated.autograder))


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("assignments")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MODBAL_FAST", "1")
        with ThreadPoolExecutor(max_workers=3) as pool:
            done = pool.map(lambda master: _generate_and_grade(master, out_dir), find_assignments())
            return {outcome.generated.name: outcome for outcome in done}


def test_there_are_three_assignments_each_with_a_wrong_answer_to_try():
    assert [p.stem for p in find_assignments()] == sorted(WRONG_ANSWERS)


def test_generate_writes_student_and_autograder_versions(outcomes):
    for name, outcome in outcomes.items():
        generated = outcome.generated
        assert generated.student.exists() and generated.solution.exists()
        assert generated.autograder.name.startswith(f"{name}-autograder_") and generated.autograder.suffix == ".zip"
        assert [p.name for p in generated.student.parent.iterdir()] == [f"{name}.ipynb"]
        questions = set(answer_cells(nbformat.read(generated.student, as_version=4)).values())
        assert questions == set(hidden_tests(generated.autograder)), "every question has an answer cell and tests"


def test_solutions_get_full_marks(outcomes):
    for name, outcome in outcomes.items():
        scores = outcome.solution_scores
        assert len(scores) >= 2, f"{name}: at least two graded questions"
        assert all(maximum > 0 for _, maximum in scores.values())
        assert {q: s for q, (s, _) in scores.items()} == {q: m for q, (_, m) in scores.items()}, name


def test_student_versions_hold_no_solutions_and_no_hidden_tests(outcomes):
    for name, outcome in outcomes.items():
        assert student_version_problems(outcome.generated) == [], name
        assert all(hidden_tests(outcome.generated.autograder).values()), f"{name}: each question has hidden tests"
        student = nbformat.read(outcome.generated.student, as_version=4)
        answers = answer_cells(student)
        assert all("..." in student.cells[i].source for i in answers), f"{name}: answers are left as ..."


def test_a_wrong_answer_loses_points_on_its_question_only(outcomes):
    for name, outcome in outcomes.items():
        wrong, full = outcome.wrong_scores, outcome.solution_scores
        score, maximum = wrong[outcome.wrong_question]
        assert score < maximum, f"{name}: the wrong answer to {outcome.wrong_question} got full marks"
        assert sum(s for s, _ in wrong.values()) < sum(m for _, m in full.values())
        others = {q: s for q, (s, _) in wrong.items() if q != outcome.wrong_question}
        assert others == {q: m for q, (_, m) in full.items() if q != outcome.wrong_question}, name


def test_a_leaked_solution_or_hidden_test_is_detected(outcomes, tmp_path):
    generated = outcomes["a1_projection"].generated
    student = nbformat.read(generated.student, as_version=4)
    solution = nbformat.read(generated.solution, as_version=4)
    leaked_solution = GeneratedAssignment(generated.name, tmp_path / "solution" / generated.student.name,
                                          generated.solution, generated.autograder)
    index = next(iter(answer_cells(student)))
    student.cells[index].source = solution.cells[index].source
    leaked_solution.student.parent.mkdir()
    nbformat.write(student, leaked_solution.student)
    problems = student_version_problems(leaked_solution)
    assert any("solution line" in p for p in problems) and any("solution marker" in p for p in problems)

    leaked_test = GeneratedAssignment(generated.name, tmp_path / "test" / generated.student.name,
                                      generated.solution, generated.autograder)
    leaked_test.student.parent.mkdir()
    leaked_test.student.write_text(generated.student.read_text())
    hidden_name = hidden_tests(generated.autograder)["q1_project"][0]
    (leaked_test.student.parent / "tests.py").write_text(f"def {hidden_name}(project):\n    pass\n")
    assert any(f"hidden test {hidden_name}" in p for p in student_version_problems(leaked_test))


def test_solution_lines_are_those_otter_takes_out():
    source = ("def f(x):\n    # BEGIN SOLUTION\n    y = x + 1\n\n    return y\n    # END SOLUTION\n"
              "answer = 3  # SOLUTION\nprint(answer)\n")
    assert solution_lines(source) == {"# BEGIN SOLUTION", "y = x + 1", "return y", "# END SOLUTION", "answer = 3  # SOLUTION"}


def test_submission_with_refuses_an_unknown_question(outcomes, tmp_path):
    with pytest.raises(ValueError, match="q9_nothing"):
        submission_with(outcomes["a1_projection"].generated, {"q9_nothing": "x = 1"}, tmp_path / "a1.ipynb")


def test_generate_refuses_a_notebook_out_of_sync_with_its_source(tmp_path):
    master = find_assignments()[0]
    (tmp_path / master.name).write_bytes(master.read_bytes())
    source = master.with_suffix(".py").read_text()
    (tmp_path / master.with_suffix(".py").name).write_text(source.replace("# %% [markdown]", "# %% [markdown]\n# Edited.", 1))
    with pytest.raises(ValueError, match="jupytext --sync"):
        generate(tmp_path / master.name, tmp_path / "out")
    assert not (tmp_path / "out" / master.stem).exists()


@pytest.mark.slow
def test_the_command_generates_and_grades_the_solutions(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MODBAL_FAST", "1")
    assert cli.main(["assignments", "a1_projection", "--out", str(tmp_path)]) == 0  # otter grades the solutions
    printed = capsys.readouterr().out
    assert "hand out:" in printed and "autograder:" in printed
    assert sorted(os.listdir(tmp_path)) == ["a1_projection"]
    assert re.search(r"a1_projection-autograder_.*\.zip", printed)
    assert cli.main(["assignments", "a9_missing", "--out", str(tmp_path)]) == 2
    assert "a9_missing" in capsys.readouterr().err
