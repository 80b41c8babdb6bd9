#!/usr/bin/python3
"""XEP-0033 (Extended Stanza Addressing) toward ejabberd's mod_multicast
(issue 7; gateway/bridge_xep33.c).

Usage: test_xep33.py PATH/TO/psycgate      (as root: ejabberd)

  ejabberd e.test (u1, u2, u3; mod_multicast at multicast.e.test)
        -- component p.test -- psycgate-E (PSYC host e.test)
  Prosody p.test (zed, yan) -- component e.test -- psycgate-P (PSYC host p.test)

Everything on 127.0.0.1 with free ports; DNS only from fakedns (A records
and _psyc._tcp SRV for both hosts). Checks:
  1. u1..u3@e.test subscribe to zed@p.test, zed approves (the subscription
     state lands in both psycgates' stores);
  2. zed's presence change crosses as ONE PSYC multicast (psycgate-P's
     coalescer); psycgate-E discovers (XEP-0033 §2: disco#info on e.test,
     disco#items, disco#info on multicast.e.test) that e.test has a
     multicast service and logs its limits (50, from the test's config);
  3. the next presence change leaves psycgate-E as ONE stanza with an
     <addresses/> list of 3 to multicast.e.test, and ejabberd delivers it to
     u1, u2 and u3, each from zed's own full JID ('from' never changed);
  4. the gateway's domain advertises http://jabber.org/protocol/address;
     a message from u1 to p.test with <addresses/> (to zed, bcc yan) is
     expanded: zed and yan get it from u1, zed's copy does not name yan;
  5. an address list naming another server is refused (<forbidden/>: no
     relay);
  6. both psycgates stop cleanly on SIGTERM.
Exit 0 = pass; a missing ejabberd, Prosody or slixmpp is a failure.

ejabberd's mod_multicast takes stanzas from a sender of another domain (the
component's p.test is "remote" to it) only when its `access` rule allows
that sender, and at most `limits: remote: presence/message` recipients per
stanza (default 20); the config this test uses is in README.md (XEP-0033).
"""
import os
import re
import sqlite3
import subprocess
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bridgetest import (Ejabberd, FakeDNS, IP, Prosody, Psycgate, RosterClient, bare, check,  # noqa: E402
                        free_ports, iq_get, psycgate_config, scenario, wait_line)

E, P = "e.test", "p.test"
SECRET = "xep33-secret"
USERS = ["u1", "u2", "u3"]
ZED = "zed@" + P
NS = "http://jabber.org/protocol/address"
MULTICAST = "multicast." + E

# What the README documents (mod_multicast for a gateway component).
EJABBERD_ACL = "  gateways:\n    server: %s\n" % P
EJABBERD_ACCESS = "  multicast:\n    allow: gateways\n"
EJABBERD_MODULE = ("  mod_multicast:\n    access: multicast\n    limits:\n      remote:\n"
                   "        presence: 50\n        message: 50\n")


def ejabberd_with_multicast(tmp, st, comp_port=None):
    ej = st.enter_context(Ejabberd(tmp, domain=E, users={u: u + "pw" for u in USERS},
                                   component=(P, SECRET), ip=IP, extra_yaml=EJABBERD_MODULE))
    with open(ej.yml) as f:
        y = f.read()
    y = y.replace("\nacl:\n", "\nacl:\n" + EJABBERD_ACL, 1).replace(
        "\naccess_rules:\n", "\naccess_rules:\n" + EJABBERD_ACCESS, 1)
    with open(ej.yml, "w") as f:
        f.write(y)
    return ej


def send_addressed(client, to, body, addresses):
    m = client.c.make_message(mto=to, mbody=body, mtype="chat")
    a = ET.Element("{%s}addresses" % NS)
    for t, jid in addresses:
        ET.SubElement(a, "{%s}address" % NS, {"type": t, "jid": jid})
    m.append(a)
    m.send()


def scenario_body(st, tmp, binary):
    clients = []
    psyc_e, psyc_p = free_ports(2, IP)
    dns = st.enter_context(FakeDNS(
        tmp, a={E: IP, P: IP},
        srv={"_psyc._tcp." + E: ["%s:%d" % (E, psyc_e)], "_psyc._tcp." + P: ["%s:%d" % (P, psyc_p)]}))
    ej = ejabberd_with_multicast(tmp, st)
    pp = st.enter_context(Prosody(tmp, domain=P, users={"zed": "zedpw", "yan": "yanpw"},
                                  component=(E, SECRET), name="prosody-p"))
    ej.start()
    pp.start()
    print("ok - ejabberd e.test (c2s %d, component p.test on %d), Prosody p.test (c2s %d)"
          % (ej.c2s_port, ej.comp_port, pp.c2s_port))
    ge = st.enter_context(Psycgate(tmp, binary, psycgate_config(
        E, os.path.join(tmp, "state-e"), psyc_e, dns_port=dns.port, component=P,
        comp_port=ej.comp_port, secret=SECRET), name="psycgate-e"))
    gp = st.enter_context(Psycgate(tmp, binary, psycgate_config(
        P, os.path.join(tmp, "state-p"), psyc_p, dns_port=dns.port, component=E,
        comp_port=pp.comp_port, secret=SECRET), name="psycgate-p"))
    ge.wait_log(r"component p\.test linked to", 15)
    gp.wait_log(r"component e\.test linked to", 15)

    zed = RosterClient(ZED, "zedpw", IP, pp.c2s_port)
    zed.connect(20)
    clients.append(zed)
    users = []
    for u in USERS:
        c = RosterClient("%s@%s" % (u, E), u + "pw", IP, ej.c2s_port)
        c.connect(20)
        clients.append(c)
        users.append(c)
    print("ok - zed@p.test and %s online" % ", ".join("%s@%s" % (u, E) for u in USERS))

    # 1. subscriptions u_i -> zed
    for c in users:
        c.subscribe(ZED)
        zed.wait_presence(lambda p, j=c.jid: p["type"] == "subscribe" and bare(p["from"]) == j,
                          "subscribe from " + c.jid, 30)
        zed.approve(c.jid)
        c.wait_presence(lambda p: p["type"] == "subscribed" and bare(p["from"]) == ZED,
                        "subscribed from zed", 30)
    print("ok - u1..u3 subscribed to zed@p.test")

    # 2. a presence change: one PSYC multicast; psycgate-E learns
    #    about multicast.e.test (it may have asked already, on the
    #    presence that followed the approvals)
    zed.presence(show="away", status="first")
    for c in users:
        c.wait_presence(lambda p: bare(p["from"]) == ZED and p["status"] == "first",
                        "zed's 'first' presence", 30)
    wait_line(gp, ["presence of " + ZED, "multicast to psyc://e.test/ for 3 subscribers"],
              "psycgate-P: one multicast for 3", 10)
    line = wait_line(ge, ["XEP-0033 multicast service of e.test: " + MULTICAST, "up to 50 recipients"],
                     "psycgate-E: discovery of multicast.e.test", 20)
    print("ok - psycgate-E found the service: %s" % line.split(" xep33 ")[-1].strip())

    # 3. the next change: ONE XEP-0033 stanza for 3, delivered to all
    before = ge.count(r"one XEP-0033 stanza to %s for 3 recipients" % re.escape(MULTICAST))
    n = [len(c.presences) for c in users]
    zed.presence(show="dnd", status="via multicast")
    got = []
    for c, since in zip(users, n):
        r = c.wait_presence(lambda p: bare(p["from"]) == ZED and p["status"] == "via multicast",
                            "zed's 'via multicast' presence", 30, since=since)
        check(r["from"].startswith(ZED + "/"), "%s got it from %r, not from zed's full JID"
              % (c.jid, r["from"]))
        got.append("%s <- %s" % (c.jid, r["from"]))
    wait_line(ge, ["<presence/> from " + ZED, "one XEP-0033 stanza to %s for 3 recipients" % MULTICAST],
              "psycgate-E: one XEP-0033 stanza for 3", 10)
    after = ge.count(r"one XEP-0033 stanza to %s for 3 recipients" % re.escape(MULTICAST))
    check(after == before + 1, "psycgate-E sent %d XEP-0033 stanzas for one presence" % (after - before))
    wait_line(ge, ["_notice_presence", "multicast of " + ZED, "-> 3 stanzas"],
                     "psycgate-E: fan-out of 3", 5)
    print("ok - one XEP-0033 stanza for 3 recipients; ejabberd delivered: %s" % "; ".join(got))

    # 4. the gateway advertises the feature and expands what it gets
    u1 = users[0]
    r, stanza = iq_get(u1, P, "http://jabber.org/protocol/disco#info")
    check(r == "result", "disco#info of p.test: %s" % r)
    feats = [f.get("var") for f in stanza.xml.iter("{http://jabber.org/protocol/disco#info}feature")]
    check(NS in feats, "p.test does not advertise %s: %r" % (NS, feats))
    print("ok - p.test advertises %s" % NS)
    yan = RosterClient("yan@" + P, "yanpw", IP, pp.c2s_port)
    yan.connect(20)
    clients.append(yan)
    send_addressed(u1, P, "to zed and yan", [("to", ZED), ("bcc", "yan@" + P)])
    for who in (zed, yan):
        m = who.wait_message(r"^to zed and yan$", 30)
        check(bare(m.frm) == u1.jid, "%s got it from %s" % (who.jid, m.frm))
        a = m.stanza.xml.find("{%s}addresses" % NS)
        names = [x.get("jid") for x in a] if a is not None else []
        check("yan@" + P not in names, "the bcc address reached %s: %r" % (who.jid, names))
    wait_line(ge, ["XEP-0033 <message/> from " + u1.jid, "expanded to 2 recipients"],
              "psycgate-E: expansion", 5)
    print("ok - a XEP-0033 message to p.test reached zed and yan from u1 (bcc not shown)")

    # 5. no relay
    send_addressed(u1, P, "relay please", [("to", ZED), ("cc", "x@elsewhere.test")])
    r = u1.wait_message(None, 20, accept_errors=True)
    check(r.type == "error" and str(r) == "forbidden" and r.frm == P,
          "the relay attempt got %s %r from %s (expected <forbidden/> from p.test)" % (r.type, r, r.frm))
    print("ok - an address on another server is refused with <forbidden/>")

    for c in clients:
        c.disconnect()
    ge.stop(20)
    gp.stop(20)
    print("ok - both psycgates stopped cleanly on SIGTERM (exit 0)")
    con = sqlite3.connect(os.path.join(tmp, "state-e", "psycgate.db"))
    counters = dict(con.execute("SELECT name, value FROM counter WHERE name LIKE 'xep33%'"))
    con.close()
    sent = ge.count(r"one XEP-0033 stanza to %s for 3 recipients" % re.escape(MULTICAST))
    check(counters.get("xep33_stanzas") == sent and counters.get("xep33_recipients") == 3 * sent
          and counters.get("xep33_expanded") == 1 and counters.get("xep33_refused") == 1,
          "psycgate-E's counters %r (logged %d XEP-0033 stanzas)" % (counters, sent))
    print("ok - psycgate-E's counters: %s" % counters)


def main():
    return scenario(__doc__, "bridge XEP-0033", "psycgate-xep33-", 170, scenario_body,
                    errors=(subprocess.SubprocessError, OSError, sqlite3.Error))


if __name__ == "__main__":
    sys.exit(main())
