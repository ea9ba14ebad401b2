import sys


def process_ip(io_buffer, in_meta):
    sys.exit(3)
