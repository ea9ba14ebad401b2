# SPDX-License-Identifier: LGPL-2.1-or-later
"""Validates frame documents against docs/frame_document.schema.json with python3-jsonschema.

    python3 validate_documents.py SCHEMA DOCUMENTS.jsonl

One document per line. Prints each failure (line, path, message) and exits 1 when there is one,
else prints how many documents were valid and exits 0.
"""
import json
import sys

import jsonschema


def main(schema_path, documents_path):
    with open(schema_path, encoding="utf-8") as schema_file:
        schema = json.load(schema_file)
    validator = jsonschema.Draft202012Validator(schema)
    failures = 0
    count = 0
    with open(documents_path, encoding="utf-8") as documents:
        for number, line in enumerate(documents, 1):
            if not line.strip():
                continue
            count += 1
            for error in validator.iter_errors(json.loads(line)):
                failures += 1
                path = "/".join(str(part) for part in error.absolute_path)
                print(f"document {number}: /{path}: {error.message}")
    if failures == 0:
        print(f"{count} documents valid")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
