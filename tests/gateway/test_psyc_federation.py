#!/usr/bin/python3
"""End-to-end test of the PSYC face: two (three) psycgate instances linked by
PSYC circuits on loopback, host names from our own fake DNS.

Usage: test_psyc_federation.py PSYCGATE SYNTAX     (SYNTAX: 0.9 or 1.0)

fakedns.py (loopback, zone "test") answers:
  a.test, b.test, c.test, d.test A 127.0.0.1   (every instance sends from 127.0.0.1)
  evil.test A 127.0.0.9                        (never the address of a circuit here)
  _psyc._tcp.X.test SRV X.test:PORT            (the instances' listen ports)

Checks, with `[psyc] syntax = SYNTAX` on every instance:
  1. echo across the federation: a test client (raw socket, PSYC SYNTAX)
     on instance a sends `_message_private` from psyc://a.test/~tester to
     psyc://b.test/~echo; a relays it to b over its own circuit (SRV
     lookup, greeting, on 1.0 `_request_authorization`); b authenticates
     a.test by DNS, routing answers "echo: TEXT", and b sends the answer
     back through the circuit a opened (0.9 at once, 1.0 after asking a
     for authorization); a logs the echo arriving (PSYC.md §2, §5, §9);
  2. refusal: a client from 127.0.0.1 claiming psyc://evil.test/~x on b
     gets `_error_rejected_relay_incoming` (PSYC.md §5 rule 4) and b logs
     it; the circuit stays usable: a packet from psyc://127.0.0.1/~me on
     the same socket is echoed back on it (1.0: a `_request_authorization`
     for evil.test gets `_error_invalid_uniform_source`, §2.3);
  3. a peer that is down: packets for psyc://c.test/~echo wait in a's queue
     while connects fail with backoff (1 s, 2 s, ...); c starts; the queued
     packets are delivered in order and echoed;
  4. peers that vanish: mid-greeting and mid-packet, incoming (raw sockets
     to a) and outgoing (a fake d.test that hangs up during a's greeting
     and then in the middle of a packet): a stays up and retries d;
  5. TLS (PSYC.md §5 rule 3): on instance t (trusting a test CA), a client
     with a certificate for tls.test (not in the DNS) may send as
     psyc://tls.test/~x; without the certificate it is refused;
  and every instance stops cleanly on SIGTERM (exit 0; under ASan with LSan).
Loopback only; every wait is bounded.
"""
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

from gwtest import TIMEOUT, Fail, check, free_port, read, recv_until, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
FAKEDNS = os.path.join(HERE, "..", "dns", "fakedns.py")


def start_fakedns(tmp, ports):
    port = free_port()
    table = {"zones": ["test"],
             "a": {"a.test": "127.0.0.1", "b.test": "127.0.0.1", "c.test": "127.0.0.1",
                   "d.test": "127.0.0.1", "evil.test": "127.0.0.9"},
             "srv": {"_psyc._tcp.%s.test" % n: "%s.test:%d" % (n, p) for n, p in ports.items()}}
    path = os.path.join(tmp, "dns.json")
    with open(path, "w") as f:
        json.dump(table, f)
    ready = os.path.join(tmp, "dns.ready")
    log = open(os.path.join(tmp, "dns.log"), "w")
    proc = subprocess.Popen(["/usr/bin/python3", FAKEDNS, "--listen", "127.0.0.1", "--port", str(port),
                             "--json", path, "--ready-file", ready],
                            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    wait_for(lambda: os.path.exists(ready) or proc.poll() is not None, "fakedns")
    check(proc.poll() is None, "fakedns exited: %s" % read(os.path.join(tmp, "dns.log")))
    return proc, port, log


class Gate:
    def __init__(self, binary, tmp, name, port, dns_port, syntax, extra=""):
        self.name = name
        self.host = "%s.test" % name
        self.port = port
        self.conf = os.path.join(tmp, "%s.conf" % name)
        self.log_path = os.path.join(tmp, "%s.log" % name)
        with open(self.conf, "w") as f:
            f.write("[gateway]\nhost = %s\nstate_dir = %s\nlog_level = debug\n"
                    "[psyc]\nlisten = 127.0.0.1:%d\nlisten_tls = none\nidle_timeout = 60\nsyntax = %s\n"
                    "[dns]\nserver = 127.0.0.1:%d\ntimeout_ms = 500\ntries = 2\n"
                    "[s2s]\nlisten = none\n%s"
                    % (self.host, os.path.join(tmp, "var-" + name), port, syntax, dns_port, extra))
        self.logf = open(self.log_path, "w")
        self.proc = subprocess.Popen([binary, "-c", self.conf], stdin=subprocess.DEVNULL,
                                     stdout=self.logf, stderr=self.logf)
        wait_for(lambda: "listening on 127.0.0.1:%d" % port in self.log() or self.proc.poll() is not None,
                 "%s listening" % name)
        check(self.proc.poll() is None, "%s exited at startup: %s" % (name, self.log()))

    def log(self):
        return read(self.log_path)

    def wait_log(self, pattern, what, limit=10.0):
        wait_for(lambda: re.search(pattern, self.log()), "%s: %s" % (self.name, what), limit)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
                raise Fail("%s did not stop within 20 s of SIGTERM" % self.name)
            check(rc == 0, "%s exited with %d after SIGTERM" % (self.name, rc))
        self.logf.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        if not self.logf.closed:
            self.logf.close()


# --- a minimal PSYC client ---------------------------------------------------

def packet(syntax, routing, method, body, entity=()):
    lines = ["%s\t%s" % (":" + k, v) for k, v in routing]
    lines.append("")
    lines += [":%s\t%s" % (k, v) for k, v in entity]
    lines.append(method)
    if syntax == "0.9":
        return ("\n".join(lines) + "\n" + body + "\n.\n").encode()
    return ("\n".join(lines) + "\n" + body + "\n|\n").encode()


def ends_packet(syntax):
    return (lambda b: b.endswith(b"\n.\n") or b == b".\n") if syntax == "0.9" else \
        (lambda b: b.endswith(b"\n|\n") or b == b"|\n")


def client(port, syntax):
    """Connects and greets; returns the socket after the peer's greeting."""
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    s.settimeout(TIMEOUT)
    if syntax == "0.9":
        s.sendall(b".\n")
        recv_until(s, lambda b: b"\n_status_circuit\n" in b and b.endswith(b"\n.\n"), "0.9 greeting")
    else:
        s.sendall(b"|\n")
        recv_until(s, lambda b: b == b"|\n", "1.0 greeting")
    return s


def test_echo(a, b, syntax):
    s = client(a.port, syntax)
    text = "hello over PSYC %s" % syntax
    s.sendall(packet(syntax, [("_source", "psyc://a.test/~tester"), ("_target", "psyc://b.test/~echo"),
                              ("_tag", "e2e1")], "_message_private", text))
    # a: relays out (the sender is on a's own host), over its own circuit.
    a.wait_log(r"_message_private from psyc://a\.test/~tester: relay to the target's host "
               r"psyc://b\.test/~echo", "relay decision")
    a.wait_log(r"circuit to b\.test ready \(PSYC %s\)" % re.escape(syntax), "own circuit ready")
    # b: authenticated a.test by DNS, echo answered.
    b.wait_log(r"host a\.test authenticated \(DNS: a\.test has address 127\.0\.0\.1\)", "DNS authentication")
    b.wait_log(r"_message_private from psyc://a\.test/~tester: echo: answering _message_private to "
               r"psyc://a\.test/~tester", "echo answer")
    # b sends back on a's circuit (psyced uses both directions, PSYC.md §9).
    if syntax == "0.9":
        b.wait_log(r"sending to a\.test on its own circuit to us \(PSYC 0\.9\)", "reuse of a's circuit")
    else:
        b.wait_log(r"asking a\.test for authorization to send on its circuit", "1.0 authorization request")
        a.wait_log(r"host b\.test authenticated \(DNS: b\.test has address", "a authenticates b")
        b.wait_log(r"circuit to a\.test ready \(PSYC 1\.0, the peer's circuit\)", "1.0 authorization granted")
    # a: the echo arrives from b's ~echo, with the text.
    a.wait_log(r'deliver _message_private from psyc://b\.test/~echo to psyc://a\.test/~tester: '
               r'"echo: %s"' % re.escape(text), "the echo at a")
    # a has no ~tester: it answers the echo with an error, which b never answers.
    a.wait_log(r"unknown local target: answering _error_unknown_name_user to psyc://b\.test/~echo",
               "unknown-user error")
    b.wait_log(r"deliver _error_unknown_name_user from psyc://a\.test/ to psyc://b\.test/~echo", "error at b")
    check(not re.search(r"answering \S+ to psyc://a\.test/ ", b.log()), "b answered an error")
    s.close()
    print("ok - %s: a.test/~tester -> a -> b.test/~echo, echo back to a over the same circuits" % syntax)


def test_refusal(b, syntax):
    s = client(b.port, syntax)
    me = s.getsockname()[1]
    s.sendall(packet(syntax, [("_source", "psyc://evil.test/~x"), ("_target", "psyc://b.test/~echo"),
                              ("_tag", "bad1")], "_message_private", "let me in"))
    got = recv_until(s, ends_packet(syntax), "the refusal")
    check(b"\n_error_rejected_relay_incoming\n" in got, "refusal is %r" % got)
    check(b":_target\tpsyc://evil.test/~x\n" in got and b":_tag_relay\tbad1\n" in got, "refusal routing %r" % got)
    check(b":_host\tevil.test\n" in got and b":_host_IP\t127.0.0.1\n" in got, "refusal variables %r" % got)
    b.wait_log(r"127\.0\.0\.1:%d refused _message_private: source host evil\.test is not authenticated "
               r"for 127\.0\.0\.1 \(DNS: evil\.test does not resolve to 127\.0\.0\.1" % me, "refusal log line")
    print("ok - %s: psyc://evil.test/~x from 127.0.0.1: _error_rejected_relay_incoming, logged" % syntax)

    if syntax == "0.9":
        # Still usable: an IP-literal source is this very peer; the echo
        # comes back on this circuit (b reuses it for psyc://127.0.0.1/).
        s.sendall(packet(syntax, [("_source", "psyc://127.0.0.1/~me"), ("_target", "psyc://b.test/~echo")],
                         "_message_private", "still here"))
        got = recv_until(s, lambda buf: b"echo: still here\n.\n" in buf, "the echo on the same circuit")
        check(b":_target\tpsyc://127.0.0.1/~me\n:_source\tpsyc://b.test/~echo\n" in got, "echo routing %r" % got)
        print("ok - 0.9: the refused circuit stays usable: echo for psyc://127.0.0.1/~me on it")
    else:
        # 1.0 sender verification (PSYC.md §2.3 step 4): refused for evil.test...
        s.sendall(b":_tag\tq1\n\n:_uniform_source\tpsyc://evil.test/\n:_uniform_target\tpsyc://b.test/\n"
                  b"_request_authorization\n|\n")
        got = recv_until(s, ends_packet(syntax), "authorization answer")
        check(got == b":_tag_relay\tq1\n\n:_uniform_source\tpsyc://evil.test/\n:_uniform_target\tpsyc://b.test/\n"
                     b"_error_invalid_uniform_source\n|\n", "answer %r" % got)
        # ...granted for our own address, on the same circuit.
        s.sendall(b":_tag\tq2\n\n:_uniform_source\tpsyc://127.0.0.1/\n:_uniform_target\tpsyc://b.test/\n"
                  b"_request_authorization\n|\n")
        got = recv_until(s, ends_packet(syntax), "authorization answer")
        check(got == b":_tag_relay\tq2\n\n:_uniform_source\tpsyc://127.0.0.1/\n:_uniform_target\tpsyc://b.test/\n"
                     b"_status_authorization\n|\n", "answer %r" % got)
        print("ok - 1.0: _request_authorization: evil.test refused, 127.0.0.1 granted on the same circuit")
    # A peer's croak (PSYC.md §2.3 step 6: no routing header) is logged with its text.
    end = b".\n" if syntax == "0.9" else b"|\n"
    s.sendall(b"\n_error_invalid_syntax\nYour packet made no sense, [_nick].\n" + end)
    b.wait_log(r"127\.0\.0\.1:%d peer says _error_invalid_syntax: Your packet made no sense, \[_nick\]\." % me,
               "croak text in the log")
    print("ok - %s: a peer's _error croak is logged with its text" % syntax)
    s.close()


def test_down_then_up(binary, tmp, a, dns_port, c_port, syntax):
    s = client(a.port, syntax)
    s.sendall(b"".join(packet(syntax, [("_source", "psyc://a.test/~tester"), ("_target", "psyc://c.test/~echo")],
                              "_message_private", "queued %d" % i) for i in range(1, 4)))
    a.wait_log(r"c\.test no circuit: connect failed: connection refused; \d packets wait, retrying in 1 s",
               "first backoff", 15)
    a.wait_log(r"c\.test no circuit: connect failed: connection refused; 3 packets wait, retrying in 2 s",
               "second backoff (doubled)", 15)
    c = Gate(binary, tmp, "c", c_port, dns_port, syntax)
    try:
        a.wait_log(r"circuit to c\.test ready \(PSYC %s\), 3 packets waiting" % re.escape(syntax),
                   "reconnect after c came up", 20)
        for i in range(1, 4):
            c.wait_log(r'deliver _message_private from psyc://a\.test/~tester to psyc://c\.test/~echo: '
                       r'"queued %d"' % i, "queued packet %d at c" % i)
            a.wait_log(r'deliver _message_private from psyc://c\.test/~echo to psyc://a\.test/~tester: '
                       r'"echo: queued %d"' % i, "echo %d at a" % i)
        order = [int(m) for m in re.findall(r'to psyc://c\.test/~echo: "queued (\d)"', c.log())]
        check(order == [1, 2, 3], "queued packets arrived as %r" % order)
        print("ok - %s: c down: queued, retried after 1 s, 2 s ...; c up: 3 packets delivered in order, echoed"
              % syntax)
    finally:
        s.close()
        c.stop()


def test_tls_host(binary, tmp, dns_port, port, syntax):
    """PSYC.md §5 rule 3: a host named by the peer's verified TLS
    certificate is authenticated without DNS (tls.test is not in the DNS)."""
    crt, key = os.path.join(tmp, "peer.crt"), os.path.join(tmp, "peer.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=tls.test",
                    "-addext", "subjectAltName=DNS:tls.test"],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    t = Gate(binary, tmp, "t", port, dns_port, syntax, "[tls]\nca_file = %s\n" % crt)
    try:
        end = b".\n" if syntax == "0.9" else b"|\n"
        msg = packet(syntax, [("_source", "psyc://tls.test/~x"), ("_target", "psyc://t.test/~echo")],
                     "_message_private", "via certificate")
        # Without the certificate: the DNS has no tls.test, refused.
        s = client(port, syntax)
        s.sendall(msg)
        got = recv_until(s, ends_packet(syntax), "the refusal")
        check(b"\n_error_rejected_relay_incoming\n" in got, "refusal is %r" % got)
        s.close()
        # With it: accepted, and the echo comes back on this circuit.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(crt, key)
        raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        s = ctx.wrap_socket(raw)
        s.settimeout(TIMEOUT)
        s.sendall(end)
        if syntax == "0.9":
            recv_until(s, lambda b: b"\n_status_circuit\n" in b and b.endswith(b"\n.\n"), "greeting")
        else:
            recv_until(s, lambda b: b == b"|\n", "greeting")
        s.sendall(msg)
        if syntax == "1.0":
            got = recv_until(s, lambda b: b"_request_authorization\n|\n" in b, "authorization request")
            check(b":_uniform_source\tpsyc://t.test/\n" in got and b":_uniform_target\tpsyc://tls.test/\n" in got,
                  "request %r" % got)
            tag = re.search(rb":_tag\t(\S+)\n", got).group(1)
            s.sendall(b":_tag_relay\t" + tag + b"\n\n:_uniform_source\tpsyc://t.test/\n"
                      b":_uniform_target\tpsyc://tls.test/\n_status_authorization\n|\n")
        got = recv_until(s, lambda b: b"echo: via certificate\n" + end in b, "the echo over TLS")
        check(b":_target\tpsyc://tls.test/~x\n" in got, "echo routing %r" % got)
        t.wait_log(r"host tls\.test authenticated \(TLS certificate names tls\.test\)", "TLS authentication")
        s.close()
        print("ok - %s: tls.test authenticated by the peer's TLS certificate (not by DNS: refused without it)"
              % syntax)
    finally:
        t.stop()


def fake_peer_d(listener, syntax, events):
    """d.test: hangs up during a's greeting, then greets and hangs up in
    the middle of a packet."""
    try:
        listener.settimeout(20)
        conn, _ = listener.accept()
        conn.settimeout(TIMEOUT)
        conn.recv(4096)
        conn.sendall(b"." if syntax == "0.9" else b"|")  # the greeting's line never ends
        conn.close()
        events.append("vanished mid-greeting")
        conn, _ = listener.accept()
        conn.settimeout(TIMEOUT)
        first = recv_until(conn, lambda x: len(x) >= 2, "a's opening")
        conn.sendall(b".\n" if syntax == "0.9" else b"|\n")
        if syntax == "1.0":
            got = recv_until(conn, lambda x: b"_request_authorization\n|\n" in first + x,
                             "authorization request")
            tag = re.search(rb":_tag\t(\S+)\n", first + got).group(1)
            conn.sendall(b":_tag_relay\t" + tag + b"\n\n:_uniform_source\tpsyc://a.test/\n"
                         b":_uniform_target\tpsyc://d.test/\n_status_authorization\n|\n")
            first = b""
        recv_until(conn, lambda x: b"for d" in first + x, "the queued packet")
        conn.sendall(b":_source\tpsyc://d.test/~x\n:_target\tpsyc://a.te")
        conn.close()
        events.append("vanished mid-packet")
    except Exception as e:  # reported by the main thread
        events.append("error: %r" % e)


def test_vanishing(a, syntax, d_listener):
    # Incoming: mid-greeting and mid-packet.
    s = socket.create_connection(("127.0.0.1", a.port), timeout=TIMEOUT)
    s.sendall(b"." if syntax == "0.9" else b"|")
    s.close()
    s = client(a.port, syntax)
    s.sendall(b":_source\tpsyc://a.test/~half\n:_target\tpsyc://b.te")
    s.close()
    a.wait_log(r"circuit closed: peer closed the connection \(PSYC %s, 0 packets" % re.escape(syntax),
               "mid-packet close")
    # Outgoing: d hangs up during our greeting, then mid-packet.
    events = []
    t = threading.Thread(target=fake_peer_d, args=(d_listener, syntax, events), daemon=True)
    t.start()
    s = client(a.port, syntax)
    s.sendall(packet(syntax, [("_source", "psyc://a.test/~tester"), ("_target", "psyc://d.test/~x")],
                     "_message_private", "for d"))
    t.join(30)
    check(events == ["vanished mid-greeting", "vanished mid-packet"], "fake d.test: %r" % events)
    a.wait_log(r"circuit to d\.test failed: peer closed the connection", "d failed during greeting")
    a.wait_log(r"circuit to d\.test lost: peer closed the connection", "d lost after the packet")
    s.close()
    # a is still fine: it greets a new client.
    s = client(a.port, syntax)
    s.close()
    print("ok - %s: peers vanishing mid-greeting and mid-packet (in and out): no crash, retried" % syntax)


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in ("0.9", "1.0"):
        print("usage: test_psyc_federation.py PSYCGATE 0.9|1.0", file=sys.stderr)
        return 2
    binary, syntax = sys.argv[1], sys.argv[2]
    d_listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    d_listener.bind(("127.0.0.1", 0))
    d_listener.listen(4)
    ports = {"a": free_port(), "b": free_port(), "c": free_port(), "d": d_listener.getsockname()[1],
             "t": free_port()}
    gates = []
    ok = False
    with tempfile.TemporaryDirectory(prefix="psycgate-fed-") as tmp:
        dns, dns_port, dns_log = start_fakedns(tmp, ports)
        try:
            a = Gate(binary, tmp, "a", ports["a"], dns_port, syntax)
            gates.append(a)
            b = Gate(binary, tmp, "b", ports["b"], dns_port, syntax)
            gates.append(b)
            test_echo(a, b, syntax)
            test_refusal(b, syntax)
            test_down_then_up(binary, tmp, a, dns_port, ports["c"], syntax)
            test_vanishing(a, syntax, d_listener)
            test_tls_host(binary, tmp, dns_port, ports["t"], syntax)
            for g in gates:
                g.stop()
            print("ok - %s: every instance stopped cleanly on SIGTERM (exit 0)" % syntax)
            ok = True
        except Fail as e:
            print("FAIL - %s" % e)
        finally:
            for g in gates:
                g.kill()
            dns.terminate()
            dns.wait(timeout=10)
            dns_log.close()
            d_listener.close()
            if not ok:
                for name in ("a", "b", "c", "t"):
                    path = os.path.join(tmp, "%s.log" % name)
                    if os.path.exists(path):
                        print("--- %s log ---" % name)
                        print(read(path))
    print("e2e.psyc_federation %s: %s" % (syntax, "PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
