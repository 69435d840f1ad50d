"""scripts/check_docs.py: every link of the repository's Markdown resolves, and the checker
tells a broken link from a good one.

  python -m unittest discover -s scripts/tests -p 'test_check_docs.py'
"""

import os
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import check_docs  # noqa: E402


class TheRepositorysLinks(unittest.TestCase):
    def test_every_link_of_the_readme_and_the_docs_resolves(self):
        files = check_docs.markdown_files()
        self.assertIn("README.md", files)
        self.assertIn("docs/partner-api.md", files)
        self.assertEqual(check_docs.broken_links(), [], "broken links (python3 scripts/check_docs.py)")


class Slugs(unittest.TestCase):
    def test_a_heading_is_spelled_as_githubs_anchor(self):
        cases = {
            "The `callback` function": "the-callback-function",
            "The emulator's limits": "the-emulators-limits",
            "Property tests of the partner API (`make api-fuzz`, part of `make test`)":
                "property-tests-of-the-partner-api-make-api-fuzz-part-of-make-test",
            "Sending replies (the dispatch logic)": "sending-replies-the-dispatch-logic",
            "The window, before sending": "the-window-before-sending",
            "Hand-over": "hand-over",
            "3.2 The reply window": "32-the-reply-window",
            "A [link](x.md) in it": "a-link-in-it",
            "消息推送配置 settings": "消息推送配置-settings",
        }
        for heading, anchor in cases.items():
            self.assertEqual(check_docs.slug(heading), anchor, heading)

    def test_a_repeated_heading_is_numbered(self):
        found = check_docs.anchors("# Notes\n\n## Notes\n\n### Notes\n")
        self.assertEqual(found, {"notes", "notes-1", "notes-2"})


class BrokenLinks(unittest.TestCase):
    def check(self, files):
        with tempfile.TemporaryDirectory() as root:
            root = os.path.realpath(root)
            os.makedirs(os.path.join(root, "docs"))
            for name, text in files.items():
                with open(os.path.join(root, name), "w", encoding="utf-8") as f:
                    f.write(textwrap.dedent(text))
            return check_docs.broken_links(root, sorted(files))

    def test_an_anchor_that_names_no_heading_is_broken(self):
        problems = self.check({
            "README.md": """\
                # Title

                See [the part](docs/a.md#the-part), [nothing](docs/a.md#nothing) and
                [here](#title), [there](#elsewhere).
                """,
            "docs/a.md": "# A\n\n## The part\n\n**Lost answers.** a bold paragraph is no heading.\n"
                         "[lost](#lost-answers)\n",
        })
        self.assertEqual(problems, [
            "README.md:3: docs/a.md#nothing: no heading with this anchor",
            "README.md:4: #elsewhere: no heading with this anchor",
            "docs/a.md:6: #lost-answers: no heading with this anchor",
        ])

    def test_a_missing_file_is_broken_and_a_directory_or_other_file_is_not(self):
        problems = self.check({
            "README.md": "[docs](docs/) [a](docs/a.md) [gone](docs/gone.md) [site](https://example.com/x#y)\n",
            "docs/a.md": "[up](../README.md) [out](../../elsewhere.md)\n",
        })
        self.assertEqual(problems, [
            "README.md:1: docs/gone.md: no such file",
            "docs/a.md:1: ../../elsewhere.md: outside the repository",
        ])

    def test_a_link_whose_text_runs_over_two_lines_is_checked(self):
        problems = self.check({
            "README.md": "# T\n\nsee [Lost\nanswers](#lost-answers) and [two\nlines](#t)\n",
        })
        self.assertEqual(problems, ["README.md:3: #lost-answers: no heading with this anchor"])

    def test_code_is_no_link(self):
        problems = self.check({
            "README.md": """\
                # T

                ```sh
                # a comment, no heading; [x](#nowhere)
                ```

                `[x](#nowhere)` in a span, and a span over
                `two
                lines [x](#nowhere)` too.
                """,
        })
        self.assertEqual(problems, [])


if __name__ == "__main__":
    unittest.main()
