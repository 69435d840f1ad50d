#!/usr/bin/env python3
"""Every link of the repository's Markdown resolves: each relative link names a file or
directory that exists, and each anchor (`#part`, `file.md#part`) names a heading of that
file, spelled as GitHub spells a heading's anchor.

  python3 scripts/check_docs.py            # the tracked *.md files; exit 1 on a broken link

Links to other sites (http, https, mailto) are not followed. Links inside code (fenced
blocks, `code spans`) are not links and are left alone. Run by `make test` through
scripts/tests/test_check_docs.py.
"""

import os
import re
import subprocess
import sys
import unicodedata
import urllib.parse

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

# An inline link or image: [text](target) or [text](target "title"). The text may hold
# one level of brackets ([`a[0]`](x)); the target has no spaces (titles are dropped).
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
# A code span, which may run on to the next line of its paragraph.
CODE_SPAN = re.compile(r"(`+)(?:(?!\n\s*\n).)+?\1", re.DOTALL)
HTML_ID = re.compile(r"<a\s[^>]*(?:id|name)=\"([^\"]+)\"")
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")


def markdown_files(root=ROOT):
    """The Markdown files to check, relative to `root`: the tracked ones in a git checkout,
    else README.md and docs/*.md."""
    probe = subprocess.run(
        ["git", "ls-files", "-z", "--", "*.md"], cwd=root, capture_output=True
    )
    if probe.returncode == 0:
        return sorted(p for p in probe.stdout.decode("utf-8").split("\0") if p)
    files = ["README.md"] if os.path.exists(os.path.join(root, "README.md")) else []
    docs = os.path.join(root, "docs")
    if os.path.isdir(docs):
        files += sorted("docs/" + f for f in os.listdir(docs) if f.endswith(".md"))
    return files


def prose_lines(text):
    """(line number, line) for each line outside fenced code blocks."""
    fence = None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)[0] * len(match.group(1))
            continue
        if fence is not None:
            if line.strip().startswith(fence) and set(line.strip()) <= {fence[0]}:
                fence = None
            continue
        yield number, line


def slug(heading):
    """GitHub's anchor for a heading's text: inline markup dropped, lower case, every
    character but letters, digits, `_`, `-` and spaces removed, spaces made hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.lower()
    kept = []
    for char in text:
        category = unicodedata.category(char)
        if char in "-_ " or category[0] in "LN" or category == "Mn":
            kept.append(char)
    return "".join(kept).replace(" ", "-")


def anchors(text):
    """Every anchor a file has: its headings' slugs (a repeated one numbered -1, -2, … as
    GitHub numbers them) and the ids of its HTML anchors."""
    found = set()
    seen = {}
    for _, line in prose_lines(text):
        match = HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
        found.update(HTML_ID.findall(line))
    return found


def links(text):
    """(line number, target) of each link outside code; a link's text may run over lines."""
    lines = text.splitlines()
    prose = dict(prose_lines(text))
    kept = "\n".join(prose.get(number, "") for number in range(1, len(lines) + 1))
    # Code spans blanked out, their line ends kept, so that numbers still count lines.
    kept = CODE_SPAN.sub(lambda m: "\n" * m.group(0).count("\n"), kept)
    for match in LINK.finditer(kept):
        yield kept.count("\n", 0, match.start()) + 1, match.group(1)


def broken_links(root=ROOT, files=None):
    """Each link that does not resolve, as "file:line: target: why"."""
    problems = []
    cache = {}

    def anchors_of(path):
        if path not in cache:
            with open(path, encoding="utf-8") as f:
                cache[path] = anchors(f.read())
        return cache[path]

    for name in files if files is not None else markdown_files(root):
        source = os.path.join(root, name)
        with open(source, encoding="utf-8") as f:
            text = f.read()
        for number, target in links(text):
            if EXTERNAL.match(target):
                continue
            where = f"{name}:{number}: {target}"
            path, _, fragment = target.partition("#")
            resolved = (
                os.path.normpath(os.path.join(os.path.dirname(source), urllib.parse.unquote(path)))
                if path
                else source
            )
            if not resolved.startswith(root + os.sep) and resolved != root:
                problems.append(f"{where}: outside the repository")
                continue
            if not os.path.exists(resolved):
                problems.append(f"{where}: no such file")
                continue
            if not fragment:
                continue
            if not resolved.endswith(".md"):
                problems.append(f"{where}: an anchor into a file that is not Markdown")
            elif urllib.parse.unquote(fragment) not in anchors_of(resolved):
                problems.append(f"{where}: no heading with this anchor")
    return problems


def main():
    problems = broken_links()
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} broken link(s)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
