# SPDX-License-Identifier: LGPL-2.1-or-later
"""plugin/ is in layers: every #include "..." of a plugin file points into its own folder or a
layer below it (docs/architecture.md). A new include that runs back up fails here."""
import os
import pathlib
import re

PLUGIN = pathlib.Path(__file__).resolve().parent.parent / "plugin"

# Folder -> rank; a file may include its own folder's headers and those of lower ranks only.
LAYERS = {
    "common": 0,
    "document": 1, "tracking": 1,
    "embed": 2, "overlay": 2,
    "actions/record": 3, "actions/upload": 3,
    "actions": 4,
    "elements": 5,
    ".": 6,  # plugin.cpp registers the elements
}
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.MULTILINE)


def folder_of(path):
    return os.path.dirname(path) or "."


def plugin_files(root):
    return sorted(path for path in root.rglob("*") if path.suffix in (".cpp", ".h"))


def upward_includes(root):
    """'file -> header' for every include of a header from the same or a higher layer."""
    upward = []
    for path in plugin_files(root):
        source = str(path.relative_to(root))
        here = folder_of(source)
        for header in INCLUDE.findall(path.read_text()):
            assert (root / header).is_file(), f"{source}: {header} is not a path from plugin/"
            there = folder_of(header)
            if there != here and LAYERS[there] >= LAYERS[here]:
                upward.append(f"{source} -> {header}")
    return upward


def test_every_plugin_folder_is_a_known_layer():
    folders = {folder_of(str(path.relative_to(PLUGIN))) for path in plugin_files(PLUGIN)}
    assert folders <= set(LAYERS), f"folders without a layer: {sorted(folders - set(LAYERS))}"


def test_includes_point_down_or_into_their_own_folder():
    assert upward_includes(PLUGIN) == []


def test_an_include_that_runs_up_or_sideways_is_found(tmp_path):
    for name, text in {"elements/gstemx.h": "", "document/a.h": "", "tracking/t.h": "",
                       "document/a.cpp": '#include "document/a.h"\n#include "elements/gstemx.h"\n',
                       "tracking/t.cpp": '#include "tracking/t.h"\n#include "document/a.h"\n'}.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert upward_includes(tmp_path) == ["document/a.cpp -> elements/gstemx.h",
                                         "tracking/t.cpp -> document/a.h"]
