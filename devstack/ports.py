import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports_in_a_row(count: int) -> int:
    """A port p with p+1 ... p+count-1 free too (the workers' metrics port and the health
    ports that follow it)."""
    while True:
        base = free_port()
        try:
            for offset in range(1, count):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05):
    """Polls predicate until it returns a truthy value; raises TimeoutError naming `what`."""
    import time

    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # the service is not up yet
            last_error = e
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}" + (f": {last_error}" if last_error else ""))
