#!/usr/bin/python3
"""End-to-end test of the PSYC listener with real sockets on loopback.

Usage: test_psyc_listener.py PATH/TO/psycgate

Starts psycgate with a temporary config on 127.0.0.1:<free port> and checks,
as a peer would see it:
  - 0.9: `.\\n` gets `.\\n`, `_notice_circuit_established` and `_status_circuit`
    (PSYC.md §2.2, §9, captures 1-circuit-greeting/02..04); a ping `.\\n` gets
    `.\\n`, a second one within 120 s does not; a later line without glyph gets
    psyced's `_error_invalid_method_compact` croak and EOF;
  - 1.0: `|\\n` gets `|\\n` (PSYC.md §2.3 step 2);
  - anything else: the `_error_syntax_initialization` croak, then EOF (§2.1);
  - TLS (0x16) followed by garbage: the circuit switches to TLS (PSYC.md
    §2.1 autodetection; the TLS side is tests/gateway/test_psyc_tls.py), the
    handshake fails, at most a TLS alert comes back, then EOF;
  - the log has one line per circuit open and close, naming the peer;
  - SIGTERM stops the daemon cleanly (exit 0; under ASan that includes LSan).
Standard library only; every wait is bounded.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

from gwtest import TIMEOUT, Fail, check, free_port, read, recv_until, wait_for

HOST = "gw.test"

CROAK_INIT = (b"\n_error_syntax_initialization\n"
              b"The old protocol begins with a dot on a line by itself.\n.\n")


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    s.settimeout(TIMEOUT)
    return s


def recv_to_eof(sock, what):
    data = bytearray()
    end = time.monotonic() + TIMEOUT
    while True:
        if time.monotonic() > end:
            raise Fail("no EOF after %s; got %r" % (what, bytes(data)))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            raise Fail("no EOF after %s; got %r" % (what, bytes(data)))
        except ConnectionResetError:
            raise Fail("connection reset instead of a clean EOF after %s; got %r"
                       % (what, bytes(data)))
        if not chunk:
            return bytes(data)
        data += chunk


def split09(data):
    """Splits a 0.9 stream into packets (each ends with a "." line)."""
    packets, cur = [], []
    for line in data.split(b"\n")[:-1]:
        cur.append(line)
        if line == b".":
            packets.append(b"\n".join(cur) + b"\n")
            cur = []
    return packets


def parse09(pkt):
    """Returns (routing dict, entity dict, method, body) of one 0.9 packet."""
    lines = pkt.decode("utf-8").split("\n")[:-1]
    check(lines[-1] == ".", "packet does not end with '.': %r" % pkt)
    lines = lines[:-1]
    routing, entity, method, body = {}, {}, None, []
    cur = routing
    for i, line in enumerate(lines):
        if method is not None:
            body.append(line)
        elif line == "":
            cur = entity
        elif line.startswith(":"):
            name, _, value = line[1:].partition("\t")
            cur[name] = value
        elif line.startswith("_"):
            method = line
        else:
            raise Fail("unexpected line %r in %r" % (line, pkt))
    return routing, entity, method, "\n".join(body)


def test_09(port, log_path):
    s = connect(port)
    me = s.getsockname()[1]
    s.sendall(b".\n")
    buf = recv_until(s, lambda b: b"\n_status_circuit\n" in b and b.endswith(b"\n.\n"),
                     "0.9 greeting")
    packets = split09(bytes(buf))
    check(len(packets) == 3, "expected 3 greeting packets, got %d: %r" % (len(packets), bytes(buf)))
    check(packets[0] == b".\n", "greeting must start with an empty packet, got %r" % packets[0])

    r, e, m, body = parse09(packets[1])
    check(m == "_notice_circuit_established", "second packet is %r" % m)
    check(r.get("_source") == "psyc://%s/" % HOST, "_source is %r" % r.get("_source"))
    check(r.get("_target_peer") == "psyc://127.0.0.1:-%d/" % me,
          "_target_peer %r does not name our port %d negatively" % (r.get("_target_peer"), me))
    check(e.get("_implementation", "").startswith("psycgate/"), "_implementation %r" % e)
    check(body == "Hello [_target_peer].\nCircuit to [_source] running [_implementation] established.",
          "notice body %r" % body)

    r, e, m, body = parse09(packets[2])
    check(m == "_status_circuit", "third packet is %r" % m)
    check(r == {"_source": "psyc://%s/" % HOST}, "status routing %r" % r)
    want = {
        "_available_characters": "UTF-8",
        "_available_protocols": "PSYC/0.9 TCP IP/4",
        "_understand_modules": "_context",
        "_using_characters": "UTF-8",
        "_using_protocols": "PSYC/0.9 TCP IP/4",
        "_using_modules": "_context",
    }
    for k, v in want.items():
        check(e.get(k) == v, "status %s = %r, want %r" % (k, e.get(k), v))
    print("ok - 0.9 greeting: ., _notice_circuit_established (_target_peer :-%d), _status_circuit" % me)

    # Ping: answered once, then not again within 120 s (PSYC.md §2.2).
    s.sendall(b".\n")
    pong = recv_until(s, lambda b: len(b) >= 2, "pong")
    check(bytes(pong) == b".\n", "ping answer %r" % bytes(pong))
    s.sendall(b".\n")
    s.settimeout(0.5)
    try:
        extra = s.recv(100)
        raise Fail("second ping within 120 s was answered: %r" % extra)
    except socket.timeout:
        pass
    s.settimeout(TIMEOUT)
    print("ok - 0.9 ping answered with '.', second ping within 120 s not answered")

    # A real packet is parsed and logged at debug level with method and source.
    s.sendall(b":_source\tpsyc://127.0.0.1/\n:_target_peer\tpsyc://%s/\n\n"
              b":_implementation\te2e\n_notice_circuit_established\nHello.\n.\n" % HOST.encode())
    wait_for(lambda: re.search(r"127\.0\.0\.1:%d packet _notice_circuit_established source psyc://127\.0\.0\.1/" % me,
                               read(log_path)), "debug log of the peer's packet")
    print("ok - 0.9 packet parsed and logged with method and source")

    # Garbage: psyced's compact-method croak, then the circuit closes.
    s.sendall(b"this is not psyc\n")
    rest = recv_to_eof(s, "compact-method croak")
    check(rest == b"\n_error_invalid_method_compact\nCompact methods undefined as yet.\n.\n",
          "croak %r" % rest)
    s.close()
    print("ok - 0.9 garbage line: _error_invalid_method_compact croak, then EOF")
    return me


def test_10(port):
    s = connect(port)
    me = s.getsockname()[1]
    s.sendall(b"|\n")
    got = recv_until(s, lambda b: len(b) >= 2, "1.0 greeting")
    check(bytes(got) == b"|\n", "1.0 greeting answer %r" % bytes(got))
    s.close()
    print("ok - 1.0: '|' answered with '|'")
    return me


def test_http(port):
    s = connect(port)
    me = s.getsockname()[1]
    s.sendall(b"GET / HTTP/1.0\r\n")
    got = recv_to_eof(s, "syntax croak")
    check(got == CROAK_INIT, "croak %r" % got)
    s.close()
    print("ok - HTTP request: _error_syntax_initialization croak, then EOF")
    return me


def test_tls(port):
    s = connect(port)
    me = s.getsockname()[1]
    s.sendall(b"\x16\x03\x01\x00\x05hello")
    got = recv_to_eof(s, "TLS refusal")
    # A TLS alert record (0x15) at most: never a plaintext PSYC croak.
    check(got == b"" or got[0] == 0x15, "TLS peer got bytes %r" % got)
    s.close()
    print("ok - broken TLS ClientHello: TLS alert, then EOF")
    return me


def test_idle(binary, tmp):
    """A second daemon with idle_timeout = 1: a silent greeted circuit is
    closed by the gateway (our read sees EOF) and the reason is logged."""
    port = free_port()
    conf = os.path.join(tmp, "idle.conf")
    log_path = os.path.join(tmp, "idle.log")
    with open(conf, "w") as f:
        f.write("[gateway]\nhost = %s\nstate_dir = %s\n[psyc]\nlisten = 127.0.0.1:%d\n"
                "listen_tls = none\nidle_timeout = 1\n[s2s]\nlisten = none\n" % (HOST, os.path.join(tmp, "var"), port))
    with open(log_path, "w") as logf:
        proc = subprocess.Popen([binary, "-c", conf], stdin=subprocess.DEVNULL,
                                stdout=logf, stderr=logf)
    try:
        wait_for(lambda: "listening on 127.0.0.1:%d" % port in read(log_path)
                 or proc.poll() is not None, "the idle listener")
        check(proc.poll() is None, "psycgate exited at startup: %s" % read(log_path))
        s = connect(port)
        me = s.getsockname()[1]
        s.sendall(b".\n")
        start = time.monotonic()
        data = recv_to_eof(s, "idle timeout")
        took = time.monotonic() - start
        s.close()
        check(data.endswith(b"\n_status_circuit\nAvailable protocols: [_available_protocols].\n.\n"),
              "greeting before the idle close: %r" % data)
        check(0.8 <= took <= 4.5, "idle close after %.2f s, want about 1 s" % took)
        wait_for(lambda: re.search(r"127\.0\.0\.1:%d circuit closed: idle timeout" % me, read(log_path)),
                 "idle close line")
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=15)
        check(rc == 0, "idle daemon exited with %d" % rc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    print("ok - idle_timeout = 1: silent circuit closed after %.1f s, reason logged" % took)


def main():
    if len(sys.argv) != 2:
        print("usage: test_psyc_listener.py PSYCGATE", file=sys.stderr)
        return 2
    binary = sys.argv[1]
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="psycgate-e2e-") as tmp:
        conf = os.path.join(tmp, "psycgate.conf")
        log_path = os.path.join(tmp, "stderr.log")
        with open(conf, "w") as f:
            f.write("[gateway]\nhost = %s\nstate_dir = %s\nlog_level = debug\n"
                    "[psyc]\nlisten = 127.0.0.1:%d\nlisten_tls = none\nidle_timeout = 30\n[s2s]\nlisten = none\n"
                    % (HOST, os.path.join(tmp, "var"), port))
        logf = open(log_path, "w")
        proc = subprocess.Popen([binary, "-c", conf], stdin=subprocess.DEVNULL,
                                stdout=logf, stderr=logf)
        ok = False
        try:
            wait_for(lambda: "listening on 127.0.0.1:%d" % port in read(log_path)
                     or proc.poll() is not None, "the listener")
            check(proc.poll() is None, "psycgate exited at startup: %s" % read(log_path))

            ports = {
                "0.9": test_09(port, log_path),
                "1.0": test_10(port),
                "http": test_http(port),
                "tls": test_tls(port),
            }

            # Every circuit is closed on our side; wait for the gateway's log.
            wait_for(lambda: all(re.search(r"127\.0\.0\.1:%d circuit closed" % p, read(log_path))
                                 for p in ports.values()), "close lines")
            log = read(log_path)
            for name, p in ports.items():
                peer = "127.0.0.1:%d " % p
                opens = [l for l in log.splitlines() if peer + "circuit open" in l]
                closes = [l for l in log.splitlines() if peer + "circuit closed" in l]
                check(len(opens) == 1, "%s circuit: %d open lines" % (name, len(opens)))
                check(len(closes) == 1, "%s circuit: %d close lines" % (name, len(closes)))
            check("TLS handshake failed" in log, "TLS reason not logged")
            check("first byte 0x47" in log, "reason for the HTTP peer not logged")
            print("ok - log: one open and one close line per circuit, with peer and reason")

            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                raise Fail("psycgate did not stop within 15 s of SIGTERM")
            check(rc == 0, "psycgate exited with %d after SIGTERM" % rc)
            print("ok - SIGTERM: clean stop, exit 0")
            test_idle(binary, tmp)
            ok = True
        except Fail as e:
            print("FAIL - %s" % e)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            logf.close()
            if not ok:
                print("--- psycgate log ---")
                print(read(log_path))
        print("e2e.psyc_listener: %s" % ("PASS" if ok else "FAIL"))
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
