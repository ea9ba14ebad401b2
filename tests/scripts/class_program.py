# SPDX-License-Identifier: LGPL-2.1-or-later
class Program:
    def __init__(self, options):
        self.offset = options["offset"]
        self.started = False

    def start(self, options):
        self.started = True

    def process_ip(self, io_buffer, in_meta, options, events):
        return [{"started": self.started, "value": self.offset + in_meta["frame"][0]["frame_num"]}]
