#!/usr/bin/python3
"""psycgate's S2S face against a scripted raw-socket peer (issue 5, tests 6, 7).

Usage: test_s2s_faults.py PATH/TO/psycgate

A fake server peer.test (FakePeer below: plain sockets and regular
expressions, no XML library, so it can send anything and vanish anywhere)
plays both roles of XEP-0220: it opens streams to gw.test (Receiving
Server side: psycgate) and it accepts psycgate's streams (as the
Authoritative Server answering db:verify, and as the target of psycgate's
own stanzas). fakedns: SRV _xmpp-server._tcp.peer.test -> FakePeer's port,
gw.test -> psycgate; nodns.test has no records at all.

  refusals (test 6)
    invalid-from   an authenticated peer.test stream carries a stanza from
                   evil.test: psycgate answers <invalid-from/> and logs it
    bad-key        peer.test's authoritative side answers db:verify with
                   type='invalid': psycgate sends db:result type='invalid',
                   logs it; the stream stays sane (a later valid key works)
    no-dns         a db:result claiming nodns.test: the verification fails
                   in DNS; the key is refused and the reason logged
  vanishing peers (test 7)
    in-mid-handshake   a peer sends its header and disappears (RST)
    in-mid-stanza      an authenticated peer disappears halfway through a
                       stanza
    out-mid-handshake  psycgate's own stream to peer.test (carrying an echo
                       answer) is cut after the header: psycgate opens a new
                       stream once and delivers the queued stanza on it
    out-mid-element    the same, cut in the middle of peer.test's <db:result>
    out-twice          both attempts are cut: the stanza bounces (logged)
  after all of it psycgate still answers, and SIGTERM stops it with exit 0
  (under ASan + LSan: no leak, no invalid access).
Exit 0 = pass.
"""
import contextlib
import os
import re
import shutil
import socket
import struct
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xmpptest import Fail, FakeDNS, Psycgate, check, free_ports  # noqa: E402

GW, PEER = "gw.test", "peer.test"
IP = "127.0.0.1"
NS = ("xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' "
      "xmlns:db='jabber:server:dialback'")
FEATURES = ("<stream:features><dialback xmlns='urn:xmpp:features:dialback'><errors/></dialback>"
            "</stream:features>")
KEY = "a" * 64


def attr(tag, name):
    m = re.search(r"\s%s=['\"]([^'\"]*)['\"]" % name, tag)
    return m.group(1) if m else None


def rst_close(sock):
    """Vanish: RST instead of FIN (SO_LINGER 0)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class Conn:
    """A byte stream with 'wait until this regex matches' reads."""

    def __init__(self, sock, name):
        self.s, self.name, self.buf = sock, name, ""
        self.s.settimeout(0.2)
        self.closed = False

    def send(self, text):
        self.s.sendall(text.encode())

    def expect(self, regex, timeout=10):
        end = time.monotonic() + timeout
        while True:
            m = re.search(regex, self.buf, re.S)
            if m:
                self.buf = self.buf[m.end():]
                return m
            if self.closed or time.monotonic() > end:
                raise Fail("%s: no /%s/ within %g s; got %r%s" % (self.name, regex, timeout, self.buf[-600:],
                                                                  " (closed)" if self.closed else ""))
            try:
                data = self.s.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                data = b""
            if not data:
                self.closed = True
            self.buf += data.decode(errors="replace")

    def wait_closed(self, timeout=10):
        end = time.monotonic() + timeout
        while not self.closed and time.monotonic() < end:
            try:
                data = self.s.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                data = b""
            if not data:
                self.closed = True
            self.buf += data.decode(errors="replace")
        return self.closed


class FakePeer:
    """peer.test's server side: answers psycgate's streams (threads)."""

    def __init__(self):
        self.ls = socket.socket()
        self.ls.bind((IP, 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]
        self.verify_answer = "valid"     # what db:verify gets
        self.vanish_next = 0             # connections to cut right after their header
        self.hang_next = 0               # connections that get no answer at all
        self.half_next = 0               # connections cut halfway through our db:result
        self.ping_reply = None           # a Conn to gw.test: XEP-0199 pings are answered on it
        self.lock = threading.Lock()
        self.stanzas, self.verifies, self.conns = [], [], 0
        self.live = []                   # sockets of open streams
        self.stop = False
        self.t = threading.Thread(target=self.accept_loop, daemon=True)
        self.t.start()

    def accept_loop(self):
        self.ls.settimeout(0.2)
        while not self.stop:
            try:
                s, _ = self.ls.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self.serve, args=(s,), daemon=True).start()

    def serve(self, s):
        with self.lock:
            self.conns += 1
            n = self.conns
            vanish = self.vanish_next > 0
            if vanish:
                self.vanish_next -= 1
            hang = not vanish and self.hang_next > 0
            if hang:
                self.hang_next -= 1
        c = Conn(s, "peer-in#%d" % n)
        try:
            hdr = c.expect(r"<stream:stream[^>]*>").group(0)
            if vanish:
                rst_close(s)
                return
            if hang:  # a server that accepts and then says nothing
                c.wait_closed(60)
                return
            c.send("<?xml version='1.0'?><stream:stream %s from='%s' to='%s' id='fake%d' version='1.0'>%s"
                   % (NS, PEER, attr(hdr, "from"), n, FEATURES))
            with self.lock:
                self.live.append(s)
            while not self.stop:
                m = c.expect(r"<db:verify[^>]*>[^<]*</db:verify>|<db:result[^>]*>[^<]*</db:result>|"
                             r"<(message|iq|presence)[\s>].*?(</\1>|/>)|</stream:stream>", 60)
                el = m.group(0)
                if el.startswith("</stream:stream"):
                    c.send("</stream:stream>")
                    break
                tag = el[:el.index(">") + 1]
                if el.startswith("<db:verify"):
                    with self.lock:
                        self.verifies.append(el)
                    c.send("<db:verify from='%s' to='%s' id='%s' type='%s'/>"
                           % (attr(tag, "to"), attr(tag, "from"), attr(tag, "id"), self.verify_answer))
                elif el.startswith("<db:result"):
                    with self.lock:
                        half = self.half_next > 0
                        if half:
                            self.half_next -= 1
                    if half:  # vanish in the middle of an element
                        c.send("<db:result from='%s' to='%s' ty" % (attr(tag, "to"), attr(tag, "from")))
                        time.sleep(0.1)
                        rst_close(s)
                        return
                    c.send("<db:result from='%s' to='%s' type='valid'/>" % (attr(tag, "to"), attr(tag, "from")))
                else:
                    with self.lock:
                        self.stanzas.append(el)
                        answer = self.ping_reply
                    if answer and el.startswith("<iq") and "urn:xmpp:ping" in el:
                        # S2S streams are one-way: the pong goes on our own
                        # stream to gw.test (RFC 6120 §4.1)
                        answer.send("<iq type='result' from='%s' to='%s' id='%s'/>"
                                    % (attr(tag, "to"), attr(tag, "from"), attr(tag, "id")))
        except Fail:
            pass
        finally:
            with self.lock:
                if s in self.live:
                    self.live.remove(s)
            try:
                s.close()
            except OSError:
                pass

    def wait_stanza(self, regex, timeout=15):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                for st in self.stanzas:
                    if re.search(regex, st, re.S):
                        return st
            time.sleep(0.05)
        raise Fail("peer.test received no stanza /%s/; got %r" % (regex, self.stanzas))

    def close_streams(self):
        """peer.test ends every open stream (XEP-0190) from its side."""
        with self.lock:
            socks = list(self.live)
        for s in socks:
            try:
                s.sendall(b"</stream:stream>")
            except OSError:
                pass
        return len(socks)

    def close(self):
        self.stop = True
        self.ls.close()


def open_stream(port, frm=PEER):
    """peer.test (or frm) opens a stream to gw.test; returns (Conn, stream id)."""
    s = socket.create_connection((IP, port), timeout=5)
    c = Conn(s, "to-gw")
    c.send("<?xml version='1.0'?><stream:stream %s from='%s' to='%s' version='1.0'>" % (NS, frm, GW))
    hdr = c.expect(r"<stream:stream[^>]*>").group(0)
    c.expect(r"</stream:features>")
    return c, attr(hdr, "id")


def dialback(c, frm=PEER, key=KEY):
    c.send("<db:result from='%s' to='%s'>%s</db:result>" % (frm, GW, key))
    return c.expect(r"<db:result[^>]*/>|<db:result[^>]*>.*?</db:result>", 15).group(0)


def config(state, s2s_port, psyc_port, dns_port, ping=0, idle=600, give_up=10):
    return """
[gateway]
host = %(gw)s
state_dir = %(state)s
log_level = debug
[psyc]
listen = %(ip)s:%(psyc)d
listen_tls = none
[s2s]
listen = %(ip)s:%(s2s)d
domain = %(gw)s
tls = none
ping_interval = %(ping)d
idle_timeout = %(idle)d
give_up = %(give_up)d
[dns]
server = %(ip)s:%(dns)d
timeout_ms = 300
tries = 1
""" % {"gw": GW, "state": state, "ip": IP, "s2s": s2s_port, "psyc": psyc_port, "dns": dns_port,
       "ping": ping, "idle": idle, "give_up": give_up}


def echo_request(c, body):
    c.send("<message from='bob@%s/r' to='echo@%s' type='chat' id='e-%s'><body>%s</body></message>"
           % (PEER, GW, body, body))


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    binary = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="psycgate-s2s-faults-")
    peer = FakePeer()
    try:
        gw_port, psyc_port = free_ports(2, IP)
        with contextlib.ExitStack() as st:
            dns = st.enter_context(FakeDNS(tmp, a={GW: IP, PEER: IP},
                                           srv={"_xmpp-server._tcp." + GW: ["%s:%d" % (GW, gw_port)],
                                                "_xmpp-server._tcp." + PEER: ["%s:%d" % (PEER, peer.port)]}))
            gw = st.enter_context(Psycgate(tmp, binary, config(os.path.join(tmp, "state"), gw_port,
                                                               psyc_port, dns.port)))
            try:
                gw.wait_log(r"listening for XMPP S2S on %s:%d" % (IP, gw_port), 15)

                # --- test 6: a key that does not verify ------------------
                peer.verify_answer = "invalid"
                c, sid = open_stream(gw_port)
                r = dialback(c)
                check(attr(r, "type") == "invalid", "bad key answered %r" % r)
                gw.wait_log(r"dialback %s -> %s INVALID key" % (PEER, GW), 5)
                print("ok   bad-key: db:result type='invalid', logged")
                # The stream stays sane (XEP-0220 §2.4 with <errors/>: other
                # pairs live on) or is closed with a logged reason.
                peer.verify_answer = "valid"
                if not c.closed:
                    c.send("<db:result from='%s' to='%s'>%s</db:result>" % (PEER, GW, KEY))
                    try:
                        r = c.expect(r"<db:result[^>]*(/>|>[^<]*</db:result>)|</stream:stream>", 10).group(0)
                    except Fail:
                        r = ""
                    print("     after the refusal the stream answered %r" % r[:120])
                if c.closed or "</stream:stream>" in c.buf or r.startswith("</stream"):
                    gw.wait_log(r"s2s-in stream from %s closed: \S" % PEER, 10)
                    print("ok   bad-key: the stream was closed with a logged reason")
                else:
                    check(attr(r, "type") == "valid", "second key on the same stream: %r" % r)
                    print("ok   bad-key: the stream stays usable: a later valid key is accepted")
                rst_close(c.s)

                # --- test 6: a stanza from a domain not authenticated -----
                c, sid = open_stream(gw_port)
                r = dialback(c)
                check(attr(r, "type") == "valid", "dialback answered %r" % r)
                echo_request(c, "first")
                st1 = peer.wait_stanza(r"echo: first", 20)
                check("to='bob@%s/r'" % PEER in st1 or 'to="bob@%s/r"' % PEER in st1, "echo to bob: %r" % st1)
                print("ok   dialback valid; echo answered over psycgate's own stream to peer.test")
                c.send("<message from='mallory@evil.test' to='echo@%s' type='chat'><body>x</body></message>" % GW)
                c.expect(r"invalid-from", 10)
                gw.wait_log(r"invalid-from", 5)
                print("ok   invalid-from: stream error <invalid-from/>, logged")
                c.wait_closed(5)
                rst_close(c.s)

                # --- test 6: dialback for a domain without DNS -------------
                c, sid = open_stream(gw_port, frm="nodns.test")
                r = dialback(c, frm="nodns.test")
                check(attr(r, "type") in ("invalid", "error"), "nodns key answered %r" % r)
                gw.wait_log(r"DNS for nodns\.test", 10)
                print("ok   no-dns: key refused (%s), DNS failure logged" % attr(r, "type"))
                rst_close(c.s)

                # --- test 7: incoming, vanishing mid-handshake -------------
                s = socket.create_connection((IP, gw_port), timeout=5)
                s.sendall(("<?xml version='1.0'?><stream:stream %s from='%s' to='%s' version='1.0'>"
                           % (NS, PEER, GW)).encode())
                time.sleep(0.2)
                rst_close(s)
                gw.wait_log(r"s2s-in stream from \S+ closed: (read failed|connection closed by the peer)"
                            r"[^\n]* during stream negotiation", 10)
                print("ok   in-mid-handshake: logged, no crash")

                # --- test 7: incoming, vanishing mid-stanza ----------------
                c, sid = open_stream(gw_port)
                check(attr(dialback(c), "type") == "valid", "dialback valid")
                c.send("<message from='bob@%s/r' to='echo@%s' type='chat'><body>half a sta" % (PEER, GW))
                time.sleep(0.3)
                lost = r"s2s-in stream from %s closed: (read failed|connection closed by the peer)" % PEER
                n_before = gw.count(lost)
                rst_close(c.s)
                gw.wait_log(lost, 10, count=n_before + 1)
                print("ok   in-mid-stanza: logged, no crash")

                # --- test 7: outgoing, cut after the header: one new stream --
                c, sid = open_stream(gw_port)
                check(attr(dialback(c), "type") == "valid", "dialback valid")
                out_closed = r"s2s-out stream to %s closed" % PEER
                n = gw.count(out_closed)
                if peer.close_streams():  # psycgate's stream from the first echo
                    gw.wait_log(out_closed, 10, count=n + 1)
                with peer.lock:
                    peer.vanish_next = 1
                echo_request(c, "second")
                peer.wait_stanza(r"echo: second", 25)
                gw.wait_log(r"s2s-out %s -> %s lost \((connection closed by the peer|read failed)[^)]*during stream "
                            r"negotiation\); new stream for 1 queued stanzas" % (GW, PEER), 5)
                print("ok   out-mid-handshake: lost stream logged, a new stream delivered the queued echo")

                # --- test 7: outgoing, cut in the middle of an element -----
                n = gw.count(out_closed)
                if peer.close_streams():
                    gw.wait_log(out_closed, 10, count=n + 1)
                n_new = gw.count(r"new stream for 1 queued stanzas")
                with peer.lock:
                    peer.half_next = 1
                echo_request(c, "halfway")
                peer.wait_stanza(r"echo: halfway", 25)
                gw.wait_log(r"new stream for 1 queued stanzas", 5, count=n_new + 1)
                print("ok   out-mid-element: the peer vanished inside <db:result>; a new stream delivered")

                # --- test 7: outgoing, cut twice: the stanza bounces --------
                n = gw.count(out_closed)
                if peer.close_streams():
                    gw.wait_log(out_closed, 10, count=n + 1)
                with peer.lock:
                    peer.vanish_next = 2
                echo_request(c, "third")
                gw.wait_log(r"bounced <message/> from echo@%s to bob@%s/r with <remote-server-(not-found|timeout)/>"
                            % (GW, PEER), 25)
                print("ok   out-twice: the queued echo bounced to its sender, logged")
                # psycgate still works afterwards
                echo_request(c, "fourth")
                peer.wait_stanza(r"echo: fourth", 25)
                print("ok   a later echo is delivered again")
                rst_close(c.s)
            except Exception:
                gw.dump()
                print("--- fakedns queries\n" + "\n".join(dns.queries()))
                raise
            gw.stop(20)
            print("ok   clean stop (exit 0)")
            if os.environ.get("S2S_TEST_DUMP"):  # to read the log of a passing run
                gw.dump()
        # --- liveness (XEP-0199, XEP-0190) and give-up, on a second
        # instance with short timers: ping_interval 1, idle 5, give_up 3
        gw_port2, psyc_port2 = free_ports(2, IP)
        with contextlib.ExitStack() as st:
            dns = st.enter_context(FakeDNS(tmp, name="fakedns2", a={GW: IP, PEER: IP},
                                           srv={"_xmpp-server._tcp." + GW: ["%s:%d" % (GW, gw_port2)],
                                                "_xmpp-server._tcp." + PEER: ["%s:%d" % (PEER, peer.port)]}))
            gw = st.enter_context(Psycgate(tmp, binary, config(os.path.join(tmp, "state2"), gw_port2,
                                                               psyc_port2, dns.port, ping=1, idle=5,
                                                               give_up=3), name="psycgate2"))
            try:
                gw.wait_log(r"listening for XMPP S2S on %s:%d" % (IP, gw_port2), 15)
                peer.close_streams()
                c, sid = open_stream(gw_port2)
                check(attr(dialback(c), "type") == "valid", "dialback valid")
                with peer.lock:
                    peer.ping_reply = c
                echo_request(c, "live")
                peer.wait_stanza(r"echo: live", 15)
                gw.wait_log(r"ping %s -> %s answered \(result\)" % (GW, PEER), 10)
                print("ok   ping: a silent outgoing stream is pinged; the pong (on peer's own stream) is seen")
                gw.wait_log(r"s2s-out stream to %s closed: idle \(clean close, XEP-0190\)" % PEER, 15)
                print("ok   idle: the outgoing stream without stanzas for idle_timeout is closed (XEP-0190)")
                with peer.lock:
                    peer.ping_reply = None
                echo_request(c, "unanswered")
                peer.wait_stanza(r"echo: unanswered", 15)
                gw.wait_log(r"no answer to XEP-0199 ping within 1 s; closing", 10)
                gw.wait_log(r"s2s-out stream to %s closed: no answer to XEP-0199 ping" % PEER, 5)
                print("ok   ping timeout: a stream whose peer does not answer is closed, logged")
                with peer.lock:
                    peer.hang_next = 2
                echo_request(c, "hang")
                gw.wait_log(r"bounced <message/> from echo@%s to bob@%s/r with <remote-server-timeout/>"
                            % (GW, PEER), 15)
                print("ok   give-up: a peer that never answers: the stanza bounced after give_up, logged")
                rst_close(c.s)
            except Exception:
                gw.dump()
                raise
            gw.stop(20)
            print("ok   clean stop (exit 0)")
            if os.environ.get("S2S_TEST_DUMP"):  # to read the log of a passing run
                gw.dump()
    except Fail as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        peer.close()
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
