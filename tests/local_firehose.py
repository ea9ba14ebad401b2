# SPDX-License-Identifier: LGPL-2.1-or-later
"""tests/firehose_server.py as a context manager: a local Firehose that checks SigV4 signatures,
and misbehaves on request (see firehose_server.py's --script faults)."""

import json
import os
import subprocess
import sys

SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "firehose_server.py")
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "emi-test-secret"


class LocalFirehose:
    def __init__(self, folder, stream, region, fail_records=0, faults=(), reject_marker="", answer_delay=0.0):
        """faults: what the first requests meet, one each ("500", "reset", "hang", ...);
        reject_marker: records holding it are refused for good; answer_delay: seconds per answer."""
        self.stream, self.region = stream, region
        self.records_path = os.path.join(folder, "firehose_records.jsonl")
        self.requests_path = os.path.join(folder, "firehose_requests.jsonl")
        self.command = [sys.executable, SERVER, "--stream", stream, "--region", region,
                        "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY,
                        "--records", self.records_path, "--requests", self.requests_path,
                        "--fail-records", str(fail_records), "--script", ",".join(faults),
                        "--reject-marker", reject_marker, "--answer-delay", str(answer_delay)]

    def __enter__(self):
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE, text=True)
        self.endpoint = f"http://127.0.0.1:{int(self.process.stdout.readline())}/"
        return self

    def __exit__(self, *exception):
        self.process.kill()
        self.process.wait()

    def action(self):
        """The keys of an upload action that point at this server."""
        return {"deliveryStreamName": self.stream, "accessKey": ACCESS_KEY, "secretKey": SECRET_KEY,
                "region": self.region, "endpoint": self.endpoint}

    def delivered(self):
        """The records the server accepted, as sent (the event's JSON and a newline)."""
        if not os.path.exists(self.records_path):
            return []
        with open(self.records_path, encoding="utf-8") as records:
            return [json.loads(line)["data"] for line in records]

    def requests(self):
        """Every request: request, status, records, failed, body_bytes, fault (or error)."""
        if not os.path.exists(self.requests_path):
            return []
        with open(self.requests_path, encoding="utf-8") as requests:
            return [json.loads(line) for line in requests]
