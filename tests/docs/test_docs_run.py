"""The README and the docs are executed: every shell command they show runs and prints what the
text says (rules in tests/docs/doc_runner.py). A command that stops working fails here.

`suanli serve --demo` is the tail of the README's first set-up command: the install before it
cannot be re-run inside the suite, which already runs in the installed virtualenv.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.docs.doc_runner import DocError, parse, run_document

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE = [path for path in DOCUMENTS
            if any(b.is_commands and b.not_run_reason is None for b in parse(path))]


def test_every_command_block_runs_or_says_why_not() -> None:
    """Shell blocks run (tagged sh) or carry a reason; untagged command blocks are refused."""
    problems = []
    for path in DOCUMENTS:
        for block in parse(path):
            if not block.is_commands:
                continue
            reason = block.not_run_reason
            if reason is None and block.language != "sh":
                problems.append(f"{block.where}: runs, so tag it ```sh")
            if reason is not None and not reason.strip():
                problems.append(f"{block.where}: not-run without a reason")
    assert not problems, "\n".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("path", RUNNABLE, ids=[p.name for p in RUNNABLE])
def test_document_runs_as_written(path: Path, tmp_path: Path) -> None:
    ran, _ = run_document(path, tmp_path)
    assert ran, f"{path.name} has no command to run"


def test_a_failing_command_fails_the_document(tmp_path: Path) -> None:
    doc = tmp_path / "broken.md"
    doc.write_text("# broken\n\n<!-- expect: never printed -->\n```sh\nsuanli --help\n```\n")
    with pytest.raises(DocError, match="does not contain 'never printed'"):
        run_document(doc, tmp_path / "work")
    doc.write_text("```sh\nsuanli pools search --no-such-option\n```\n")
    with pytest.raises(DocError, match="exited 2"):
        run_document(doc, tmp_path / "work2")


def test_a_placeholder_without_a_capture_fails(tmp_path: Path) -> None:
    doc = tmp_path / "placeholder.md"
    doc.write_text("```sh\nsuanli jobs get <job id>\n```\n")
    with pytest.raises(DocError, match="no capture"):
        run_document(doc, tmp_path / "work")


def test_an_untagged_command_block_must_be_marked(tmp_path: Path) -> None:
    doc = tmp_path / "untagged.md"
    doc.write_text("```\nsuanli --help\n```\n")
    with pytest.raises(DocError, match="tagged ```sh"):
        run_document(doc, tmp_path / "work")
    doc.write_text("<!-- not-run: an example of a reason -->\n```\nsuanli --help\n```\n")
    ran, skipped = run_document(doc, tmp_path / "work2")
    assert not ran and skipped[0].not_run_reason == "an example of a reason"
