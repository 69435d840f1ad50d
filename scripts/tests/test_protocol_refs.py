"""Every section citation in the repository resolves to a heading of docs/wechat-protocol.md.

The code cites the WeChat protocol notes by section number: the section sign followed by a
number such as "3.4", or a range written with an en dash and the sign on both ends or on
the first end only ("1.2–1.4"). Each tracked *.rs, *.md, *.py, *.sh and *.yaml file is
scanned (the notes themselves included); each cited number, and both ends of a range, must
have a numbered heading in the notes ("## 3. ..." or "### 3.4 ...").

  python -m unittest discover -s scripts/tests -p 'test_protocol_refs.py'
"""

import os
import re
import subprocess
import unittest

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
NOTES = "docs/wechat-protocol.md"
PATTERNS = ["*.rs", "*.md", "*.py", "*.sh", "*.yaml"]

# Written with an escape so that this file holds no citation of its own.
SIGN = "\u00a7"
NUMBER = r"\d+(?:\.\d+)*"
# A citation: the sign and a number, optionally a range to a second number after an en
# dash, em dash or hyphen: with the sign again ("3–" sign "5", spaces allowed) or directly
# after the dash ("1.2–1.4"; no spaces, so "3.2 - 5 sends" is no range).
DASH = r"[\u2013\u2014-]"
CITATION = re.compile(
    SIGN + r"(" + NUMBER + r")(?:\s*" + DASH + r"\s*" + SIGN + r"(" + NUMBER + r")|" + DASH + r"(" + NUMBER + r"))?"
)
HEADING = re.compile(r"^#{1,6}\s+(" + NUMBER + r")\.?\s")


def in_git_checkout(root=ROOT):
    probe = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=root, capture_output=True)
    return probe.returncode == 0


def tracked_files(root=ROOT):
    """The tracked files of the kinds that may cite the notes, relative to `root`."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--", *PATTERNS],
        cwd=root,
        check=True,
        capture_output=True,
    ).stdout
    return sorted(path for path in out.decode("utf-8").split("\0") if path)


def sections(text):
    """The section numbers the notes have a heading for, with how often each occurs."""
    found = {}
    in_fence = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            continue
        match = None if in_fence else HEADING.match(line)
        if match:
            found[match.group(1)] = found.get(match.group(1), 0) + 1
    return found


def citations(text):
    """(line number, citation as written, [section numbers it needs]) for each citation."""
    for number, line in enumerate(text.splitlines(), start=1):
        for match in CITATION.finditer(line):
            end = match.group(2) or match.group(3)
            ends = [match.group(1)] + ([end] if end else [])
            yield number, match.group(0), ends


def unresolved(files, known):
    """Each citation in `files` ({path: text}) with an end missing from `known`, as
    "path:line: citation (missing ...)", and how many citations were checked."""
    problems, checked = [], 0
    for path in sorted(files):
        for line, written, ends in citations(files[path]):
            checked += 1
            missing = [end for end in ends if end not in known]
            if missing:
                problems.append(f"{path}:{line}: {written} (no heading for {', '.join(SIGN + m for m in missing)})")
    return problems, checked


def read(path):
    with open(os.path.join(ROOT, path), "rb") as f:
        return f.read().decode("utf-8", errors="replace")


class ProtocolReferencesTest(unittest.TestCase):
    def setUp(self):
        self.known = sections(read(NOTES))

    @unittest.skipUnless(in_git_checkout(), "needs a git checkout to list the tracked files")
    def test_every_citation_in_the_tracked_files_has_its_heading_in_the_notes(self):
        files = {path: read(path) for path in tracked_files() if os.path.isfile(os.path.join(ROOT, path))}
        self.assertTrue(NOTES in files, f"{NOTES} is not tracked")
        problems, checked = unresolved(files, self.known)
        self.assertGreater(checked, 0, "no citations found: the scan is broken")
        self.assertEqual(problems, [], "citations without a section in " + NOTES + ":\n  " + "\n  ".join(problems))

    def test_the_notes_number_each_section_once(self):
        self.assertIn("1", self.known)
        twice = sorted(number for number, count in self.known.items() if count > 1)
        self.assertEqual(twice, [], "sections with more than one heading")

    def test_a_missing_section_or_either_end_of_a_range_is_named_with_file_and_line(self):
        known = sections("## 1. One\n### 1.2 Two\n```\n## 8. In a code block\n```\n## 3. Three\n")
        self.assertEqual(set(known), {"1", "1.2", "3"})
        text = (
            f"fine {SIGN}1.2 and {SIGN}3\n"
            f"missing {SIGN}4.1\n"
            f"range {SIGN}1\u2013{SIGN}5 and {SIGN}1.2-1.9\n"
            f"end of a sentence {SIGN}3.\n"
            f"no range {SIGN}3 - 5 sends\n"
        )
        problems, checked = unresolved({"a.rs": text}, known)
        self.assertEqual(checked, 7)
        self.assertEqual(
            problems,
            [
                f"a.rs:2: {SIGN}4.1 (no heading for {SIGN}4.1)",
                f"a.rs:3: {SIGN}1\u2013{SIGN}5 (no heading for {SIGN}5)",
                f"a.rs:3: {SIGN}1.2-1.9 (no heading for {SIGN}1.9)",
            ],
        )


if __name__ == "__main__":
    unittest.main()
