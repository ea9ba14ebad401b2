# SPDX-License-Identifier: LGPL-2.1-or-later
"""Ctrl-C for `emi run`: the first asks the pipeline to finish its files, the second ends the
process at once (exit 130).

Python runs a SIGINT handler only when the main thread executes bytecode, which it does not while
it waits in GStreamer (set_state(NULL) behind a script that never returns). So SIGINT is blocked
in every thread started after InterruptWatcher.start() and taken by a thread of its own with
sigwait(), which needs no cooperation from the others. Start it before anything starts threads.
"""

import os
import signal
import threading

EXIT_STATUS = 130  # 128 + SIGINT, what a shell reports for a process that Ctrl-C ended


class InterruptWatcher:
    def __init__(self, out):
        self.out = out
        self.interrupted = threading.Event()
        self._stopping = False
        self._thread = None
        self._previous_mask = None
        self._previous_handler = None

    def start(self):
        self._previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        # A thread that was there before (and so has SIGINT unblocked) gets the same treatment.
        self._previous_handler = signal.signal(signal.SIGINT, lambda signum, frame: self._on_interrupt())
        self._thread = threading.Thread(target=self._wait, name="emi-interrupts", daemon=True)
        self._thread.start()
        return self

    def _wait(self):
        while True:
            signal.sigwait({signal.SIGINT})
            if self._stopping:
                return
            self._on_interrupt()

    def _on_interrupt(self):
        if self.interrupted.is_set():
            self.out.write("\nemi: second Ctrl-C: stopped at once (files may be incomplete)\n")
            self.out.flush()
            os._exit(EXIT_STATUS)
        self.interrupted.set()

    def stop(self):
        self._stopping = True
        signal.pthread_kill(self._thread.ident, signal.SIGINT)
        self._thread.join()
        signal.signal(signal.SIGINT, self._previous_handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, self._previous_mask)
