#!/usr/bin/python3
"""A gateway set to speak PSYC 1.0 meets a psyced that speaks 0.9 only.

Usage: test_psyc_fallback.py PATH/TO/psycgate

psyced 0.99 answers a `|` with the 0.9 croak `_error_syntax_initialization`
and closes (PSYC.md §9). A fake peer `old.test` behaves like that, and
greets like psyced (captures 1-circuit-greeting/02..04) when spoken to in
0.9. psycgate (host a.test, `[psyc] syntax = 1.0`, static routes for
old.test and a.test) gets a `_message_private` for psyc://old.test/~bob from
a local client, opens a 1.0 circuit, is refused, logs the fallback, opens a
0.9 circuit and delivers the packet there. SIGTERM: exit 0. Loopback only,
no DNS server (static routes), standard library only.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading

from gwtest import TIMEOUT, Fail, check, free_port, read, recv_until, wait_for

CAPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vectors", "psyc",
                    "psyced-0.9-captures", "1-circuit-greeting")
CROAK = b"\n_error_syntax_initialization\nThe old protocol begins with a dot on a line by itself.\n.\n"


def fake_old_psyced(listener, events):
    """Refuses `|` like psyced, accepts `.`; records what it got."""
    for _ in range(2):
        conn, _ = listener.accept()
        conn.settimeout(TIMEOUT)
        first = conn.recv(1)
        if first == b"|":
            events.append("refused 1.0")
            conn.sendall(CROAK)
            conn.close()
            continue
        events.append("0.9 circuit")
        greeting = b"".join(open(os.path.join(CAPS, f), "rb").read() for f in
                            ("02-out-dot.psyc09", "03-out-_notice_circuit_established.psyc09",
                             "04-out-_status_circuit.psyc09"))
        conn.sendall(greeting)
        data = bytearray(first)
        try:
            while b"_message_private" not in data or not data.endswith(b"\n.\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
        except socket.timeout:
            pass
        events.append(bytes(data))
        conn.close()
        return


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    binary = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="psycgate-fallback-")
    port = free_port()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(TIMEOUT)
    old_port = listener.getsockname()[1]
    events = []
    peer = threading.Thread(target=fake_old_psyced, args=(listener, events), daemon=True)
    peer.start()
    conf = os.path.join(tmp, "a.conf")
    with open(conf, "w") as f:
        f.write("[gateway]\nhost = a.test\nstate_dir = %s\n"
                "[psyc]\nlisten = 127.0.0.1:%d\nlisten_tls = none\nsyntax = 1.0\n"
                "[dns]\nstatic = old.test=127.0.0.1:%d, a.test=127.0.0.1\n"
                "[s2s]\nlisten = none\n" % (os.path.join(tmp, "var"), port, old_port))
    log_path = os.path.join(tmp, "a.log")
    logf = open(log_path, "w")
    proc = subprocess.Popen([binary, "-c", conf], stdout=logf, stderr=logf)
    try:
        wait_for(lambda: "listening on 127.0.0.1:%d" % port in read(log_path), "the gateway to listen")
        s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        s.settimeout(TIMEOUT)
        s.sendall(b".\n")
        recv_until(s, lambda b: b"\n_status_circuit\n" in b and b.endswith(b"\n.\n"), "0.9 greeting")
        s.sendall(b":_source\tpsyc://a.test/~tester\n:_target\tpsyc://old.test/~bob\n\n"
                  b"_message_private\nhello old friend\n.\n")
        wait_for(lambda: "refused PSYC 1.0" in read(log_path), "the fallback log line", TIMEOUT)
        peer.join(TIMEOUT)
        check(events[:2] == ["refused 1.0", "0.9 circuit"], "the fake peer saw %r" % events[:2])
        got = events[2] if len(events) > 2 else b""
        check(b"_message_private" in got and b"hello old friend" in got,
              "the packet did not arrive over the 0.9 circuit: %r" % got)
        line = [x for x in read(log_path).splitlines() if "refused PSYC 1.0" in x][0]
        print("ok - %s" % line.split(" psyc ")[-1])
        print("ok - the packet arrived over the 0.9 circuit")
        s.close()
        proc.send_signal(signal.SIGTERM)
        check(proc.wait(TIMEOUT) == 0, "exit code after SIGTERM")
        print("ok - SIGTERM: exit 0")
        print("PASS psyc fallback")
        return 0
    except Fail as e:
        print("FAIL: %s" % e)
        print(read(log_path)[-3000:])
        return 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        listener.close()


if __name__ == "__main__":
    sys.exit(main())
