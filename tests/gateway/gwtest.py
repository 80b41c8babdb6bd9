"""Helpers shared by the end-to-end tests of the daemon (stdlib only)."""
import socket
import time

TIMEOUT = 5.0  # per socket operation


class Fail(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Fail(what)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, what, limit=10.0):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.05)
    raise Fail("timed out waiting for " + what)


def read(path):
    with open(path, "r", errors="replace") as f:
        return f.read()


def recv_until(sock, pred, what):
    """Reads until pred(buf) holds; returns the bytes. Raises Fail on EOF or timeout."""
    buf = bytearray()
    end = time.monotonic() + TIMEOUT
    while not pred(buf):
        if time.monotonic() > end:
            raise Fail("timed out reading %s; got %r" % (what, bytes(buf)))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            raise Fail("timed out reading %s; got %r" % (what, bytes(buf)))
        if not chunk:
            raise Fail("EOF while reading %s; got %r" % (what, bytes(buf)))
        buf += chunk
    return bytes(buf)
