"""Shared pieces of the bridge's end-to-end tests (issue 6), on top of the
XMPP harness tests/xmpp/xmpptest.py (import this module from a test next to
it; it puts ../xmpp on sys.path and re-exports the harness).

  RosterClient(jid, password, host, port)
      the harness Client plus a roster: at session start it fetches the
      roster (Prosody sends subscription requests only to "interested"
      resources, i.e. those that asked for it) and records every presence
      it receives. Automatic subscription handling is off: the test answers.
      .subscribe(jid) .approve(jid) .presence(show=None, status=None, priority=None)
      .send_me(to, text)  (/me TEXT as a chat message)
      .wait_presence(pred, what, timeout, since=0) -> the first recorded
          presence (a dict: type, from, to, show, status, priority) for which
          pred is true, among .presences[since:]; records are kept, so order
          of arrival does not matter. (slixmpp: "type" is "available" for an
          available presence without <show/>, else the show value.)
      .unsubscribe(jid) .cancel(jid) (unsubscribed) .send_chatstate(to, state)
      .wait_chatstate(from_bare, state, timeout)
  soft(problems, what, fn)  runs fn(), records a Fail in problems and goes on
  psycgate_config(**kw)  the config text of one psycgate (see its arguments)
  wait_line(gw, needles, what, timeout)  waits for one log line holding every
      string of `needles` (each either a str or a tuple of alternatives)
  assert_no_s2s(dns, *prosodys)  no _xmpp-server/_xmpps-server query in the
      fakedns log, no s2s session in the Prosody logs
  Federation(st, tmp, secret, users_a, users_b, ...)  the two-Prosody,
      two-psycgate domain federation most scenarios start from
  scenario(doc, name, prefix, seconds, body)  a test's main(): usage,
      deadline, temp dir, ExitStack, FAIL/PASS, cleanup
"""
import asyncio
import contextlib
import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "xmpp"))
from xmpptest import *  # noqa: E402,F401,F403
from xmpptest import Client, Fail, check, run  # noqa: E402

IP = "127.0.0.1"


class RosterClient(Client):
    def __init__(self, jid, password, host, port):
        super().__init__(jid, password, host, port)
        self.c.auto_authorize = None   # the test approves
        self.c.auto_subscribe = False
        self.presences = []
        self.chatstates = []   # (from, state) of every XEP-0085 chat state received
        self.roster_ready = asyncio.Event()
        self.c.register_plugin("xep_0085")

        async def on_start(_):
            try:
                await self.c.get_roster(timeout=15)
            finally:
                self.roster_ready.set()

        def on_presence(p):
            rec = {"type": str(p["type"]), "from": str(p["from"]), "to": str(p["to"]),
                   "show": str(p["show"]) if p["show"] else "",
                   "status": str(p["status"]), "priority": int(p["priority"] or 0)}
            self.presences.append(rec)

        self.c.add_event_handler("session_start", on_start)
        self.c.add_event_handler("presence", on_presence)
        self.c.add_event_handler("chatstate", lambda m: self.chatstates.append((str(m["from"]),
                                                                                str(m["chat_state"]))))

    def connect(self, timeout=20):
        super().connect(timeout)
        run(self.roster_ready.wait(), 20)
        # presence again, now that the roster was fetched (the first one
        # was sent by the harness's session_start handler)
        self.c.send_presence()

    def subscribe(self, jid):
        self.c.send_presence(pto=jid, ptype="subscribe")

    def approve(self, jid):
        self.c.send_presence(pto=jid, ptype="subscribed")

    def presence(self, show=None, status=None, priority=None):
        self.c.send_presence(pshow=show, pstatus=status, ppriority=priority)

    def unsubscribe(self, jid):
        self.c.send_presence(pto=jid, ptype="unsubscribe")

    def cancel(self, jid):
        self.c.send_presence(pto=jid, ptype="unsubscribed")

    def send_chatstate(self, to, state):
        """A chat message with only a XEP-0085 chat state (no body)."""
        m = self.c.make_message(mto=to, mtype="chat")
        m["chat_state"] = state
        m.send()

    def wait_chatstate(self, frm_bare, state, timeout=20):
        async def go():
            while True:
                for f, s in self.chatstates:
                    if bare(f) == frm_bare and s == state:
                        return f
                await asyncio.sleep(0.05)
        try:
            return run(go(), timeout)
        except Fail:
            raise Fail("%s: no chat state %s from %s within %g s; received: %r"
                       % (self.jid, state, frm_bare, timeout, self.chatstates))

    def send_me(self, to, text):
        self.c.send_message(mto=to, mbody="/me " + text, mtype="chat")

    def wait_presence(self, pred, what, timeout=20, since=0):
        """since: only records from that index of .presences on."""
        async def go():
            while True:
                for rec in self.presences[since:]:
                    if pred(rec):
                        return rec
                await asyncio.sleep(0.05)
        try:
            return run(go(), timeout)
        except Fail:
            raise Fail("%s: no presence %s within %g s; received: %r" % (self.jid, what, timeout, self.presences))


def soft(problems, what, fn):
    """Runs fn(); a Fail is recorded in problems (and printed) instead of
    ending the test, so that the later checks still run."""
    try:
        r = fn()
        print("ok - %s%s" % (what, ": %s" % r if r else ""))
    except Fail as e:
        problems.append("%s: %s" % (what, e))
        print("not ok - %s: %s" % (what, e))


def bare(jid):
    return str(jid).split("/")[0]


def psycgate_config(host, state, psyc_port, dns_port=None, static=None, component=None, comp_port=None,
                    secret=None, s2s_listen="none", s2s_domain=None, transport=None, extra=""):
    t = ["[gateway]", "host = %s" % host, "state_dir = %s" % state, "log_level = debug",
         "[psyc]", "listen = %s:%d" % (IP, psyc_port), "listen_tls = none",
         "[tls]", "generate_self_signed = no",
         "[dns]"]
    if dns_port:
        t.append("server = %s:%d" % (IP, dns_port))
    if static:
        t.append("static = %s" % static)
    t += ["timeout_ms = 500", "tries = 2",
          "[s2s]", "listen = %s" % s2s_listen, "tls = none"]
    if s2s_domain:
        t.append("domain = %s" % s2s_domain)
    if component:
        t += ["[component]", "domain = %s" % component, "host = %s" % IP, "port = %d" % comp_port,
              "secret = %s" % secret]
    if transport:
        t += ["[bridge]", "transport = %s" % transport]
    return "\n".join(t) + "\n" + extra


def _has(line, needle):
    if isinstance(needle, (tuple, list)):
        return any(n in line for n in needle)
    return needle in line


def find_line(gw, needles):
    for line in gw.log_text().splitlines():
        if all(_has(line, n) for n in needles):
            return line
    return None


def wait_line(gw, needles, what, timeout=10):
    end = time.monotonic() + timeout
    while True:
        line = find_line(gw, needles)
        if line:
            return line
        if time.monotonic() > end:
            raise Fail("%s: no log line for %s (a line with all of %r) within %g s"
                       % (gw.name, what, needles, timeout))
        time.sleep(0.1)


# What Prosody logs for a TCP connect to its s2s port that sends nothing
# (the harness's own port_open() probe while it waits for the listeners).
_PROBE = re.compile(r"Incoming s2s connection$|s2s disconnected: \(nil\)->\(nil\)|"
                    r"Destroying incoming session \(nil\)->\(nil\)")


def assert_no_s2s(dns, *prosodys):
    q = [x for x in dns.queries() if "_xmpp-server." in x or "_xmpps-server." in x]
    check(not q, "an XMPP server looked up S2S: %r" % q)
    for p in prosodys:
        # Prosody names its s2s sessions s2sin<hex> / s2sout<hex> (util/session.lua)
        lines = [x for x in p.log_text().splitlines() if re.search(r"\bs2s(in|out)[0-9a-f]+\b", x)]
        real = [x for x in lines if " s2sout" in " " + x.split("\t")[0] or not _PROBE.search(x)]
        check(not real, "%s had s2s sessions: %r" % (p.name, real[:5]))


def iq_get(client, to, ns, timeout=15, tag="query"):
    """An iq get with an empty <TAG xmlns=NS/> from a slixmpp Client:
    ("result", stanza) or ("error:CONDITION", stanza), "error:timeout"
    (stanza None) when nothing came."""
    async def go():
        import xml.etree.ElementTree as ET
        iq = client.c.make_iq_get(ito=to)
        iq.append(ET.Element("{%s}%s" % (ns, tag)))
        try:
            return "result", await iq.send(timeout=timeout)
        except Exception as e:  # slixmpp IqError / IqTimeout
            stanza = getattr(e, "iq", None)
            return "error:" + (str(stanza["error"]["condition"]) if stanza is not None else "timeout"), stanza
    return run(go(), timeout + 5)


class Federation:
    """Domain federation (DESIGN.md §2.2) of two Prosodys, each with a
    psycgate serving the other's domain as a component, PSYC between the
    psycgates, DNS only from fakedns: the set-up of most bridge scenarios.

      fed = Federation(st, tmp, secret, users_a={...}, users_b={...},
                       a="a.test", b="b.test", s2s=False)
      fed.dns, fed.pa, fed.pb         the fakedns and the started Prosodys
      fed.psyc_a, fed.psyc_b          the psycgates' PSYC ports (SRV _psyc._tcp)
      fed.state_a, fed.state_b        their state directories
      fed.config_a(extra=""), fed.config_b(extra="")   their config texts

    s2s=True also gives each Prosody an S2S port with its SRV record, so a
    test can prove that the Prosodys never use it (assert_no_s2s).
    """

    def __init__(self, st, tmp, secret, users_a, users_b, a="a.test", b="b.test", s2s=False):
        self.a, self.b, self.secret, self.tmp = a, b, secret, tmp
        ports = free_ports(4 if s2s else 2, IP)
        self.psyc_a, self.psyc_b = ports[0], ports[1]
        srv = {"_psyc._tcp." + a: ["%s:%d" % (a, self.psyc_a)], "_psyc._tcp." + b: ["%s:%d" % (b, self.psyc_b)]}
        if s2s:
            srv["_xmpp-server._tcp." + a] = ["%s:%d" % (a, ports[2])]
            srv["_xmpp-server._tcp." + b] = ["%s:%d" % (b, ports[3])]
        self.dns = st.enter_context(FakeDNS(tmp, a={a: IP, b: IP}, srv=srv))  # noqa: F405
        kw_a = dict(s2s=True, s2s_port=ports[2], dns_port=self.dns.port) if s2s else {}
        kw_b = dict(s2s=True, s2s_port=ports[3], dns_port=self.dns.port) if s2s else {}
        self.pa = st.enter_context(Prosody(tmp, domain=a, users=users_a, component=(b, secret),  # noqa: F405
                                           name="prosody-a", **kw_a))
        self.pb = st.enter_context(Prosody(tmp, domain=b, users=users_b, component=(a, secret),  # noqa: F405
                                           name="prosody-b", **kw_b))
        self.pa.start()
        self.pb.start()
        self.state_a, self.state_b = os.path.join(tmp, "state-a"), os.path.join(tmp, "state-b")

    def config_a(self, extra=""):
        return psycgate_config(self.a, self.state_a, self.psyc_a, dns_port=self.dns.port, component=self.b,
                               comp_port=self.pa.comp_port, secret=self.secret, extra=extra)

    def config_b(self, extra=""):
        return psycgate_config(self.b, self.state_b, self.psyc_b, dns_port=self.dns.port, component=self.a,
                               comp_port=self.pb.comp_port, secret=self.secret, extra=extra)


def scenario(doc, name, prefix, seconds, body, errors=()):
    """The frame of a scenario test: `test.py PATH/TO/psycgate`. Under a
    deadline of `seconds` (below the ctest TIMEOUT, so cleanup still runs),
    in a fresh temporary directory removed afterwards, runs
    body(st, tmp, binary) inside a contextlib.ExitStack; a Fail (or one of
    `errors`) is the test's failure. Prints PASS/FAIL `name`; returns the
    exit code (2: usage)."""
    if len(sys.argv) != 2:
        print(doc)
        return 2
    try:
        import slixmpp  # noqa: F401
    except ImportError:
        print("FAIL: python3-slixmpp is not installed (run scripts/install-deps)")
        return 1
    binary = os.path.abspath(sys.argv[1])
    deadline(seconds)  # noqa: F405
    tmp = tempfile.mkdtemp(prefix=prefix)
    os.chmod(tmp, 0o755)  # Prosody and ejabberd run as their own users
    ok = False
    try:
        with contextlib.ExitStack() as st:
            body(st, tmp, binary)
            ok = True
    except (Fail,) + tuple(errors) as e:
        print("FAIL: %s" % e)
    finally:
        close_loop()  # noqa: F405
        shutil.rmtree(tmp, ignore_errors=True)
    print(("PASS " if ok else "FAIL ") + name)
    return 0 if ok else 1
