def process_ip(io_buffer, in_meta)
    return []
