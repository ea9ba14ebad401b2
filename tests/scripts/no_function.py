def something_else(io_buffer, in_meta):
    return []
