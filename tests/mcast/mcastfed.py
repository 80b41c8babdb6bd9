"""A loopback federation of psycgate processes for context multicast
(issue 7): shared by tests/mcast/test_federation.py and bench/bench_mcast.py.

  gateway K: its own PSYC host gK.test (127.0.0.1, its own port, found by
  SRV _psyc._tcp.gK.test in the test's FakeDNS) and its own XMPP domain
  gK.test, served by a fake XMPP server (FakeXMPP: the accept side of
  XEP-0114 in Python, one listening port per gateway) that records every
  stanza its gateway sends and lets the test inject stanzas. No Prosody:
  50 of them would not fit on a 2-core machine.

  Natural addresses: alice@g0.test = psyc://g0.test/~alice. Gateway 0
  serves the components g1.test .. g(N-1).test at XMPP server 0 (so its
  users reach the others' users), gateway K>0 the component g0.test at
  XMPP server K (so alice's stanzas reach its users).

  Federation(tmp, binary, n, contacts, fanout, enabled)
    .start()            DNS, fake servers, gateways; waits for the links
    .subscribe_all()    every contact subscribes to alice, alice approves
                        (through the gateways: the stores hold FROM/TO)
    .presence(status)   alice's broadcast: one copy per contact, injected
                        at server 0 the way an XMPP server sends them;
                        returns the injection time
    .received(k)        alice's presence statuses per contact at server k
    .metrics()          SIGUSR1 to every gateway; their "mcast: link"
                        counters, {k: {root: (packets, bytes)}}
    .tree()             {k: (parent, children)} from the assignment logs
"""
import hashlib
import os
import re
import signal
import socket
import sys
import threading
import time
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "xmpp"))
from xmpptest import Fail, FakeDNS, Psycgate, check, free_ports  # noqa: E402,F401

IP = "127.0.0.1"
SECRET = "mcast-secret"
NS = "{jabber:component:accept}"


def run_main(main):
    """sys.exit(main()), a Fail printed as FAIL and exit 1."""
    try:
        sys.exit(main())
    except Fail as e:
        print("FAIL: %s" % e)
        sys.exit(1)


def host(k):
    return "g%d.test" % k


class _Conn:
    def __init__(self, server, sock):
        self.server, self.sock = server, sock
        self.domain = None
        self.lock = threading.Lock()

    def send(self, data):
        with self.lock:
            self.sock.sendall(data.encode())

    def run(self):
        parser = ET.XMLPullParser(events=("start", "end"))
        depth, sid = 0, "fx%d" % id(self)
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                parser.feed(data)
                for ev, el in parser.read_events():
                    if ev == "start":
                        depth += 1
                        if depth == 1:
                            self.domain = el.get("to")
                            self.send("<?xml version='1.0'?><stream:stream xmlns:stream="
                                      "'http://etherx.jabber.org/streams' xmlns='jabber:component:accept' "
                                      "from='%s' id='%s'>" % (self.domain, sid))
                        continue
                    depth -= 1
                    if depth != 1:
                        continue
                    if el.tag == NS + "handshake":
                        want = hashlib.sha1((sid + SECRET).encode()).hexdigest()
                        if (el.text or "").strip() != want:
                            self.send("<stream:error><not-authorized xmlns="
                                      "'urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>")
                            return
                        self.send("<handshake/>")
                        self.server.linked(self)
                    else:
                        self.server.record(el)
                    el.clear()
        except (OSError, ET.ParseError):
            pass
        finally:
            self.server.unlinked(self)
            self.sock.close()


class FakeXMPP:
    """One fake XMPP server: accepts component links, records stanzas."""

    def __init__(self, index):
        self.index = index
        self.lsock = socket.socket()
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind((IP, 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.links = {}
        self.recs = []  # (monotonic time, stanza name, to, from, type, status)
        self.muc = []   # from a room: (monotonic time, stanza name, to, from, type, 110 in codes, body)
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                s, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=_Conn(self, s).run, daemon=True).start()

    def linked(self, conn):
        with self.lock:
            self.links[conn.domain] = conn

    def unlinked(self, conn):
        with self.lock:
            if self.links.get(conn.domain) is conn:
                del self.links[conn.domain]

    def record(self, el):
        frm = el.get("from") or ""
        if frm.startswith("*"):  # a place as a MUC room (natural addresses: *ROOM@HOST/NICK)
            codes = [s.get("code") for s in el.iter("{http://jabber.org/protocol/muc#user}status")]
            body = el.find(NS + "body")
            with self.lock:
                self.muc.append((time.monotonic(), el.tag[len(NS):], el.get("to"), frm, el.get("type"),
                                 "110" in codes, body.text if body is not None else None))
            return
        st = el.find(NS + "status")
        with self.lock:
            self.recs.append((time.monotonic(), el.tag[len(NS):], el.get("to"), el.get("from"), el.get("type"),
                              st.text if st is not None else None))

    def send(self, domain, text):
        with self.lock:
            conn = self.links.get(domain)
        check(conn is not None, "server %d has no component link for %s" % (self.index, domain))
        conn.send(text)

    def records(self):
        with self.lock:
            return list(self.recs)

    def muc_records(self):
        with self.lock:
            return list(self.muc)

    def close(self):
        self.lsock.close()
        with self.lock:
            conns = list(self.links.values())
        for c in conns:
            try:
                c.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def gateway_config(k, n, tmp, psyc_port, dns_port, comp_port, fanout, enabled, log_level, syntax="1.0"):
    comps = " ".join(host(j) for j in range(1, n)) if k == 0 else host(0)
    return "\n".join([
        "[gateway]", "host = %s" % host(k), "state_dir = %s" % os.path.join(tmp, "state-%d" % k),
        "log_level = %s" % log_level,
        "[psyc]", "listen = %s:%d" % (IP, psyc_port), "listen_tls = none", "syntax = %s" % syntax,
        "[tls]", "generate_self_signed = no",
        "[dns]", "server = %s:%d" % (IP, dns_port), "timeout_ms = 500", "tries = 2",
        "[s2s]", "listen = none", "tls = none",
        "[component]", "domain = %s" % comps, "host = %s" % IP, "port = %d" % comp_port, "secret = %s" % SECRET,
        "[multicast]", "enabled = %s" % ("yes" if enabled else "no"), "fanout = %d" % fanout, ""])


class Federation:
    def __init__(self, tmp, binary, n, contacts, fanout=8, enabled=True, log_level="info", name="fed",
                 syntax="1.0"):
        self.syntax = syntax
        self.tmp = os.path.join(tmp, name)
        os.makedirs(self.tmp, exist_ok=True)
        self.binary, self.n, self.fanout, self.enabled = binary, n, fanout, enabled
        self.log_level = log_level
        # contact j lives at server 1 + j % (n-1)
        self.contacts = [("c%d" % j, 1 + j % (n - 1)) for j in range(contacts)]
        self.gws, self.xmpp, self.dns = [], [], None
        self.seq = 0

    def jid(self, c):
        return "%s@%s" % (c[0], host(c[1]))

    def start(self):
        # The fake servers first: they keep their ports, which free_ports
        # then cannot hand out again.
        self.xmpp = [FakeXMPP(k) for k in range(self.n)]
        ports = free_ports(self.n, IP)
        self.ports = ports
        self.dns = FakeDNS(self.tmp, a={host(k): IP for k in range(self.n)},
                           srv={"_psyc._tcp." + host(k): ["%s:%d" % (host(k), ports[k])] for k in range(self.n)})
        check(self.dns.port not in ports, "fakedns took a gateway's port; run again")
        for k in range(self.n):
            cfg = gateway_config(k, self.n, self.tmp, ports[k], self.dns.port, self.xmpp[k].port, self.fanout,
                                 self.enabled, self.log_level, self.syntax)
            self.gws.append(Psycgate(self.tmp, self.binary, cfg, name="gw%d" % k))
        end = time.monotonic() + 60
        for k in range(self.n):
            want = self.n - 1 if k == 0 else 1
            while len(self.xmpp[k].links) < want:
                check(self.gws[k].alive(), "gw%d exited at start:\n%s" % (k, self.gws[k].log_text()[-3000:]))
                check(time.monotonic() < end, "gw%d: %d of %d component links" % (k, len(self.xmpp[k].links), want))
                time.sleep(0.05)

    def close(self):
        for g in self.gws:
            g.close()
        for x in self.xmpp:
            x.close()
        if self.dns:
            self.dns.close()

    def stop_all(self):
        """SIGTERM to every live gateway; each must exit 0."""
        for g in self.gws:
            if g.alive():
                g.proc.send_signal(signal.SIGTERM)
        for g in self.gws:
            if g.proc and not getattr(g, "killed", False):
                try:
                    g.proc.wait(30)
                except Exception:
                    g.kill()
                    raise Fail("%s did not stop within 30 s of SIGTERM" % g.name)
                g._close_log()
                check(g.proc.returncode == 0, "%s exited with %s after SIGTERM:\n%s"
                      % (g.name, g.proc.returncode, g.log_text()[-2000:]))

    def _wait(self, pred, what, timeout):
        end = time.monotonic() + timeout
        while not pred():
            for k, g in enumerate(self.gws):
                check(g.alive() or getattr(g, "killed", False), "gw%d died:\n%s" % (k, g.log_text()[-3000:]))
            check(time.monotonic() < end, "timed out after %d s: %s" % (timeout, what))
            time.sleep(0.05)

    def subscribe_all(self, timeout=120):
        by_server = {}
        for c in self.contacts:
            by_server.setdefault(c[1], []).append(c)
        for k, cs in by_server.items():
            self.xmpp[k].send(host(0), "".join("<presence type='subscribe' from='%s' to='alice@%s'/>"
                                               % (self.jid(c), host(0)) for c in cs))
        want = len(self.contacts)
        self._wait(lambda: sum(1 for r in self.xmpp[0].records() if r[4] == "subscribe") >= want,
                   "alice's server got %d subscribe requests" % want, timeout)
        for k, cs in by_server.items():
            self.xmpp[0].send(host(k), "".join("<presence type='subscribed' from='alice@%s' to='%s'/>"
                                               % (host(0), self.jid(c)) for c in cs))
        for k, cs in by_server.items():
            self._wait(lambda k=k, cs=cs: sum(1 for r in self.xmpp[k].records() if r[4] == "subscribed") >= len(cs),
                       "server %d got %d subscribed" % (k, len(cs)), timeout)

    def presence(self, status, wait=True):
        """alice's broadcast, as an XMPP server sends it: a copy per contact.
        wait: until gateway 0 sent it on (its copies arrive on N-1 component
        links; the next broadcast's must not overtake them, or the coalescer
        sees the payloads alternate, routing/coalesce.h)."""
        wait = wait and self.enabled  # (off: nothing to wait for in the log; callers wait for arrival)
        mark = self.gws[0].count(r"~alice #\d+: |-> one _notice_presence") if wait else 0
        by_server = {}
        for c in self.contacts:
            by_server.setdefault(c[1], []).append(c)
        t0 = time.monotonic()
        for k, cs in by_server.items():
            self.xmpp[0].send(host(k), "".join("<presence from='alice@%s/home' to='%s'><status>%s</status></presence>"
                                               % (host(0), self.jid(c), status) for c in cs))
        if wait:
            self._wait(lambda: self.gws[0].count(r"~alice #\d+: |-> one _notice_presence") > mark,
                       "gateway 0 sent presence %s on" % status, 30)
        return t0

    # ---- a place on gateway 0 as a MUC room (issue 7 bench (b), (c)) ----

    def occupants(self, per_server):
        """[(jid, nick, server k)]: per_server users at each server 1..N-1."""
        return [("o%d@%s/r" % (j, host(k)), "o%d_%d" % (k, j), k)
                for k in range(1, self.n) for j in range(per_server)]

    def join(self, occ, room="room"):
        """Every occupant enters *room@g0.test (no history); returns the
        injection time. Batched per server, as a server's links carry them."""
        by_server = {}
        for jid, nick, k in occ:
            by_server.setdefault(k, []).append(
                "<presence from='%s' to='*%s@%s/%s'><x xmlns='http://jabber.org/protocol/muc'>"
                "<history maxstanzas='0'/></x></presence>" % (jid, room, host(0), nick))
        t0 = time.monotonic()
        for k, lines in by_server.items():
            self.xmpp[k].send(host(0), "".join(lines))
        return t0

    def joined(self, occ, room="room"):
        """{jid: time of its self-presence (110)}."""
        want = {jid for jid, _, _ in occ}
        out = {}
        for k in {o[2] for o in occ}:
            for t, name, to, frm, typ, self110, _ in self.xmpp[k].muc_records():
                if name == "presence" and self110 and to in want and frm.startswith("*%s@" % room):
                    out.setdefault(to, t)
        return out

    def groupchat(self, occ_from, body, room="room"):
        jid, _, k = occ_from
        t0 = time.monotonic()
        self.xmpp[k].send(host(0), "<message from='%s' to='*%s@%s' type='groupchat'><body>%s</body></message>"
                          % (jid, room, host(0), body))
        return t0

    def heard(self, body):
        """{occupant jid: arrival time} of the groupchat with that body."""
        out = {}
        for x in self.xmpp[1:]:
            for t, name, to, frm, typ, _, b in x.muc_records():
                if name == "message" and typ == "groupchat" and b == body:
                    out.setdefault(to, t)
        return out

    def received(self, k, prefix=""):
        """{contact jid: [(time, status), ...]} of alice's presence at server k."""
        out = {}
        for t, name, to, frm, typ, status in self.xmpp[k].records():
            if name == "presence" and frm and frm.startswith("alice@") and typ is None and status is not None \
                    and status.startswith(prefix):
                out.setdefault(to.split("/")[0], []).append((t, status))
        return out

    def metrics(self, settle=0.3):
        """SIGUSR1 to each live gateway; the last "mcast: link" counters."""
        marks = {}
        for k, g in enumerate(self.gws):
            if g.alive():
                marks[k] = g.count(r"mcast: totals ")
                g.proc.send_signal(signal.SIGUSR1)
        out = {}
        for k in marks:
            self.gws[k].wait_log(r"mcast: totals ", 10, marks[k] + 1)
            time.sleep(0.05)
            text = self.gws[k].log_text()
            block = text[text.rfind("mcast: totals "):]
            links = {}
            for m in re.finditer(r"mcast: link (\S+) packets (\d+) bytes (\d+)", block):
                links[m.group(1)] = (int(m.group(2)), int(m.group(3)))
            out[k] = links
        return out

    def tree(self):
        """{k: (parent root, number of children)} from each gateway's last assignment."""
        out = {}
        for k in range(1, self.n):
            last = None
            for m in re.finditer(r"tree assignment: parent (\S+), (\d+) children", self.gws[k].log_text()):
                last = (m.group(1), int(m.group(2)))
            if last:
                out[k] = last
        return out
