# SPDX-License-Identifier: LGPL-2.1-or-later
"""The docs can't drift: property tables agree with the built plugin, and every relative link resolves.

Run by `meson test docs` with the build's plugin on GST_PLUGIN_PATH_1_0 (tests/meson.build).
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SOURCE_ROOT = Path(__file__).resolve().parent.parent
DOCS = SOURCE_ROOT / "docs"
GENERATOR = DOCS / "gen_properties.py"
PAGES = [SOURCE_ROOT / "README.md", SOURCE_ROOT / "bench" / "README.md"] + sorted(DOCS.rglob("*.md"))

FENCED_BLOCK = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)
CODE_SPAN = re.compile(r"`[^`\n]*`")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)


def plugin_dir():
    """The build's plugin folder: the first entry of the test's GST_PLUGIN_PATH_1_0."""
    entries = [entry for entry in os.environ.get("GST_PLUGIN_PATH_1_0", "").split(os.pathsep) if entry]
    if not entries:
        pytest.skip("GST_PLUGIN_PATH_1_0 is not set: run through `meson test -C <build> docs`")
    return Path(entries[0])


def fix_command():
    return f"ninja -C {plugin_dir().parent} docs"


def run_generator(*args):
    return subprocess.run([sys.executable, str(GENERATOR), "--plugin-dir", str(plugin_dir()), *args],
                          capture_output=True, text=True, timeout=120)


def test_property_tables_match_the_built_plugin():
    result = run_generator("--check")
    if result.returncode != 0:
        pytest.fail("docs/ and the built plugin disagree on the elements' properties:\n"
                    f"{result.stdout}{result.stderr}\nFix: {fix_command()}   (then commit docs/elements/)",
                    pytrace=False)


def test_the_check_catches_a_drifted_table_and_regeneration_fixes_it(tmp_path):
    docs = tmp_path / "docs"
    shutil.copytree(DOCS / "elements", docs / "elements")
    page = docs / "elements" / "emtracker.md"
    text = page.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `iou-threshold` |"))
    page.write_text(text.replace(row, row.replace("| `iou-threshold` |", "| `iou-treshold` |")))

    drifted = run_generator("--check", "--docs-dir", str(docs))
    assert drifted.returncode == 1
    assert "-| `iou-treshold` |" in drifted.stdout and "+| `iou-threshold` |" in drifted.stdout

    assert run_generator("--docs-dir", str(docs)).returncode == 0
    assert "iou-treshold" not in page.read_text() and "| `iou-threshold` |" in page.read_text()
    assert run_generator("--check", "--docs-dir", str(docs)).returncode == 0


def test_every_element_page_has_a_generated_table():
    pages = sorted((DOCS / "elements").glob("*.md"))
    assert len(pages) >= 6
    for page in pages:
        element = page.stem
        text = page.read_text()
        assert f"<!-- properties:begin {element} " in text and f"<!-- properties:end {element} -->" in text, page


def slug(heading):
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = CODE_SPAN.sub(lambda match: match.group(0)[1:-1], heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text).lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page):
    seen = {}
    result = set()
    for heading in HEADING.findall(FENCED_BLOCK.sub("", page.read_text())):
        base = slug(heading)
        count = seen.get(base, 0)
        result.add(base if count == 0 else f"{base}-{count}")
        seen[base] = count + 1
    return result


def links(page):
    text = CODE_SPAN.sub("", FENCED_BLOCK.sub("", page.read_text()))
    return LINK.findall(text)


def test_relative_links_resolve():
    broken = []
    for page in PAGES:
        for target in links(page):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
                continue
            path, _, fragment = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            where = f"{page.relative_to(SOURCE_ROOT)}: ({target})"
            if not resolved.exists():
                broken.append(f"{where}: no such file {resolved}")
            elif fragment and resolved.suffix == ".md" and fragment not in anchors(resolved):
                broken.append(f"{where}: no heading #{fragment} in {resolved.relative_to(SOURCE_ROOT)}")
    assert not broken, "broken links:\n" + "\n".join(broken)


def test_the_link_check_can_fail(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Title\n\n[ok](#title) [bad](missing.md) [bad anchor](#nowhere) `[code](x.md)`\n")
    assert links(page) == ["#title", "missing.md", "#nowhere"]
    assert anchors(page) == {"title"}


def test_readme_is_a_front_door():
    readme = (SOURCE_ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    assert "./emi test" in readme and "./emi demo" in readme  # CI runs `./emi test`
