#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""The Firehose uploader against a local Firehose that misbehaves: a table of events fired,
delivered, duplicated, refused for good (in rejected.jsonl), dropped (counted) and lost (must be 0).

Each scenario runs tests/firehose_fault_writer (built with the tests) against tests/firehose_server.py
on 127.0.0.1: every fault the server can play, records refused for good, a kill -9 mid-upload
followed by a second run on the same spool, a spool on a full disk, and two soaks (4x and 40x the
events, a fault every 4th request) whose peak RSS shows whether memory grows with the events.
The last row is `emi run` itself killed (-9) mid-upload and mid-clip, then run again
(tests/kill_run.py): its events are one a frame, as many as fired before the kill.

    bench/faults.py [--build-dir build] [--events 500] [--no-emi-run]
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVER = os.path.join(ROOT, 'tests', 'firehose_server.py')
STREAM, REGION = 'emi-bench-stream', 'eu-west-1'
ACCESS_KEY, SECRET_KEY = 'AKIAEMIBENCHKEY00001', 'emi-bench-secret'
FAULTS = ('500', '429', 'throttle', 'partial', 'garbage', 'reset', 'hang', 'huge')


class Server:
    def __init__(self, folder, *flags):
        self.records = os.path.join(folder, 'records.jsonl')
        self.process = subprocess.Popen(
            ['/usr/bin/python3', SERVER, '--stream', STREAM, '--region', REGION, '--access-key', ACCESS_KEY,
             '--secret-key', SECRET_KEY, '--records', self.records,
             '--requests', os.path.join(folder, 'requests.jsonl'), *flags],
            stdout=subprocess.PIPE, text=True)
        self.endpoint = f'http://127.0.0.1:{int(self.process.stdout.readline())}/'

    def delivered(self):
        """How many times each event arrived, by its n."""
        counts = {}
        if os.path.exists(self.records):
            with open(self.records, encoding='utf-8') as records:
                for line in records:
                    n = json.loads(json.loads(line)['data'])['n']
                    counts[n] = counts.get(n, 0) + 1
        return counts

    def stop(self):
        self.process.kill()
        self.process.wait()


def writer(binary, server, spool, *flags):
    return subprocess.Popen([binary, '--endpoint', server.endpoint, '--spool', spool, '--stream', STREAM,
                             '--region', REGION, '--access-key', ACCESS_KEY, '--secret-key', SECRET_KEY, *flags],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def summary_of(process):
    lines = process.stdout.read().splitlines()
    process.wait()
    return json.loads(lines[-1])


def scenario(binary, folder, events, server_flags, writer_flags=(), kill_after=None):
    """Fired, and the server's counts, the writers' summaries."""
    spool = os.path.join(folder, 'spool')
    server = Server(folder, *server_flags)
    summaries = []
    try:
        flags = list(writer_flags)
        if '--count-override' in flags:
            at = flags.index('--count-override')
            events = int(flags[at + 1])
            del flags[at:at + 2]
        first = writer(binary, server, spool, '--count', str(events), *flags)
        if kill_after is None:
            summaries.append(summary_of(first))
        else:
            first.stdout.readline()  # "enqueued N"
            deadline = time.monotonic() + 60
            while sum(server.delivered().values()) < kill_after and time.monotonic() < deadline:
                time.sleep(0.005)  # polling the file the server writes
            first.send_signal(signal.SIGKILL)
            first.wait()
            summaries.append(summary_of(writer(binary, server, spool, '--count', '0')))
        rejected_file = os.path.join(spool, 'rejected.jsonl')
        rejected = sum(1 for _ in open(rejected_file, encoding='utf-8')) if os.path.exists(rejected_file) else 0
        return events, server.delivered(), rejected, summaries
    finally:
        server.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--build-dir', default=os.path.join(ROOT, 'build'))
    parser.add_argument('--events', type=int, default=500)
    parser.add_argument('--no-emi-run', action='store_true', help='leave out the kill -9 of emi run')
    options = parser.parse_args()
    binary = os.path.join(options.build_dir, 'tests', 'firehose_fault_writer')
    if not os.path.exists(binary):
        sys.exit(f'{binary} is missing: build the tests first (ninja -C {options.build_dir})')
    events = options.events
    scenarios = [(f'fault {fault} x3', ['--script', ','.join([fault] * 3), '--hang-seconds', '10'],
                  ['--max-records', '100'], None) for fault in FAULTS]
    scenarios += [
        # The writer's events are {"n":N,"padding":""}: event 7 is refused for good, alone or with
        # its whole request (found by halving).
        ('event 7 refused for good', ['--reject-marker', '"n":7,'], [], None),
        ('event 7 refuses its request', ['--reject-request-marker', '"n":7,'], [], None),
        ('kill -9 mid-upload, rerun', ['--answer-delay', '0.05'], ['--max-records', '50'], events // 3),
        ('spool on a 64 KiB disk', ['--script', '500,500,500,500,500'],
         ['--padding', '1000', '--max-records', '20', '--full-disk', str(64 * 1024)], None),
    ]
    # Soaks: every 4th request meets a fault, in turn; the writer's peak RSS should not grow with
    # the number of events.
    soak_faults = ','.join(('ok,ok,ok,' + fault) for fault in FAULTS if fault != 'hang')
    for count in (options.events * 4, options.events * 40):
        scenarios.append((f'soak of {count}, faults', ['--script', ','.join([soak_faults] * (count // 400 + 1))],
                          ['--max-records', '100', '--count-override', str(count)], None))
    print(f'{"scenario":32} {"fired":>6} {"delivered":>9} {"duplicated":>10} {"refused":>7} {"dropped":>7} '
          f'{"lost":>5} {"seconds":>7} {"peak RSS":>9}  notes')
    total_lost = 0
    for name, server_flags, writer_flags, kill_after in scenarios:
        folder = tempfile.mkdtemp(prefix='emi-faults-', dir='/dev/shm' if os.path.isdir('/dev/shm') else None)
        started = time.monotonic()
        try:
            fired, delivered, refused, summaries = scenario(binary, folder, events, server_flags, writer_flags,
                                                            kill_after)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        seconds = time.monotonic() - started
        dropped = sum(summary['dropped'] for summary in summaries)
        duplicated = sum(count - 1 for count in delivered.values())
        lost = fired - len(delivered) - refused - dropped
        total_lost += lost + dropped
        notes = ', '.join(f'disk: {summary["disk"]}' for summary in summaries if summary['disk'] != 'plain')
        rss = max(summary['max_rss_kib'] for summary in summaries) / 1024
        print(f'{name:32} {fired:6} {len(delivered):9} {duplicated:10} {refused:7} {dropped:7} {lost:5} '
              f'{seconds:7.1f} {rss:6.1f} MiB  {notes}')
    if not options.no_emi_run:
        total_lost += emi_run_killed(options.build_dir)
    return 1 if total_lost else 0


def emi_run_killed(build_dir):
    """The kill -9 of `emi run` row (tests/kill_run.py); returns what was lost or dropped."""
    sys.path.insert(0, os.path.join(ROOT, 'tests'))
    import kill_run
    environment = {**os.environ, 'GST_PLUGIN_PATH': os.path.join(os.path.abspath(build_dir), 'plugin'),
                   'PYTHONPATH': os.path.join(ROOT, 'python')}
    folder = tempfile.mkdtemp(prefix='emi-faults-run-')
    started = time.monotonic()
    try:
        result = kill_run.kill_mid_upload_and_clip(folder, environment)
        frames, _ = kill_run.decoded_frames_and_duration(result['clip'])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    seconds = time.monotonic() - started
    summary = result['second_summary']
    dropped, refused = summary['uploads_dropped'], summary['uploads_rejected']
    lost = len(result['lost'])
    notes = (f"in flight {result['in_flight']}, spooled at the kill {result['spooled_after_kill']}, "
             f"killed clip plays {frames} frames")
    print(f'{"kill -9 emi run, rerun":32} {len(result["fired"]):6} {len(result["delivered"]):9} '
          f'{result["duplicated"]:10} {refused:7} {dropped:7} {lost:5} {seconds:7.1f} {"-":>9}  {notes}')
    return lost + dropped


if __name__ == '__main__':
    sys.exit(main())
