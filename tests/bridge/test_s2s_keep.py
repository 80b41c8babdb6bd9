#!/usr/bin/python3
"""A stanza for the S2S face survives a crash (issue 6, "kill -9 at any
moment loses nothing acknowledged"; gateway/bridge_outbox.h).

Usage: test_s2s_keep.py PATH/TO/psycgate

psycgate-1 is a standalone S2S gateway ([gateway] host = [s2s] domain =
[bridge] transport = gw.test) whose PSYC face trusts 127.0.0.1; the test
itself is a PSYC peer on loopback. Prosody serves xmpp.test (alice, S2S on,
DNS from fakedns).
  1. Prosody is down. The test sends psycgate-1 a _message_private from
     psyc://psyc2.test/~carol to alice's uniform psyc://gw.test/~alice@xmpp.test;
     psycgate-1 translates it to a message from carol%psyc2.test@gw.test and
     hands it to its S2S face, which cannot reach xmpp.test: the stanza is
     kept in the store (queue xmpp-s2s:gw.test xmpp.test).
  2. psycgate-1 is killed with SIGKILL, Prosody starts and alice logs in,
     psycgate-1 starts again: it resumes the stanza from its store, opens S2S with dialback,
     and alice receives the message exactly once.
  3. Once written, the stanza leaves the store (queue empty).
Exit 0 = pass.
"""
import os
import socket
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bridgetest import (Client, Fail, FakeDNS, IP, Prosody, Psycgate, bare, check, free_ports,  # noqa: E402
                        psycgate_config, scenario)

XMPP = "xmpp.test"
GW = "gw.test"
P2 = "psyc2.test"
ALICE = "alice@" + XMPP
CAROL = "carol%%%s@%s" % (P2, GW)
BODY = "kept across a crash"


def rows(state_dir):
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(state_dir, "psycgate.db"), uri=True, timeout=5)
    try:
        return db.execute("SELECT dest FROM queue").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


def inject(port):
    """Greets psycgate-1 in 0.9 and sends carol's message (we are trusted)."""
    s = socket.create_connection((IP, port), 10)
    s.settimeout(10)
    s.sendall(b".\n")
    got = b""
    end = time.monotonic() + 10
    while b"_status_circuit" not in got and time.monotonic() < end:
        got += s.recv(4096)
    check(b"_status_circuit" in got, "psycgate-1 did not greet: %r" % got[:200])
    s.sendall((":_source\tpsyc://%s/~carol\n:_target\tpsyc://%s/~alice@%s\n\n_message_private\n%s\n.\n"
               % (P2, GW, XMPP, BODY)).encode())
    return s


def scenario_body(st, tmp, binary):
    psyc1, gw_s2s, p_s2s = free_ports(3, IP)
    srv = {"_psyc._tcp." + GW: ["%s:%d" % (GW, psyc1)],
           "_xmpp-server._tcp." + GW: ["%s:%d" % (GW, gw_s2s)],
           "_xmpp-server._tcp." + XMPP: ["%s:%d" % (XMPP, p_s2s)]}
    dns = st.enter_context(FakeDNS(tmp, a={GW: IP, XMPP: IP, P2: IP}, srv=srv))
    pro = st.enter_context(Prosody(tmp, domain=XMPP, s2s=True, s2s_port=p_s2s, dns_port=dns.port))
    state = os.path.join(tmp, "state-1")
    conf = psycgate_config(GW, state, psyc1, dns_port=dns.port, s2s_listen="%s:%d" % (IP, gw_s2s),
                           s2s_domain=GW, transport=GW).replace(
                               "[psyc]\n", "[psyc]\ntrusted = 127.0.0.1\n").replace(
                               "[s2s]\n", "[s2s]\ngive_up = 120\n")
    g1 = st.enter_context(Psycgate(tmp, binary, conf, name="psycgate-1"))
    g1.wait_log(r"listening for XMPP S2S on", 15)

    # 1. Prosody is down: the stanza is kept.
    sock = inject(psyc1)
    g1.wait_log(r"-> <message/> from %s to %s" % (CAROL.replace(".", r"\."), ALICE.replace(".", r"\.")), 15)
    end = time.monotonic() + 10
    while not rows(state) and time.monotonic() < end:
        time.sleep(0.1)
    kept = rows(state)
    check(kept == [("xmpp-s2s:%s %s" % (GW, XMPP),)], "the store holds %r" % kept)
    print("ok - Prosody down: carol's message waits in psycgate-1's store (%s)" % kept[0][0])

    # 2. Crash, Prosody up, restart: delivered once.
    g1.kill()
    sock.close()
    pro.start()
    alice = Client(ALICE, "alicepw", IP, pro.c2s_port)
    alice.connect(20)
    g1 = st.enter_context(Psycgate(tmp, binary, conf, name="psycgate-1b"))
    g1.wait_log(r"resuming 1 stanzas for component links and S2S kept in the store", 15)
    r = alice.wait_message("^" + BODY + "$", 40)
    check(bare(r.frm) == CAROL, "the message came from %s, not %s" % (r.frm, CAROL))
    print("ok - psycgate-1 killed with SIGKILL and restarted: alice got %r from %s" % (str(r), r.frm))
    try:
        extra = alice.wait_message("^" + BODY + "$", 3)
        raise Fail("alice got the message twice (%r)" % str(extra))
    except Fail as e:
        if "twice" in str(e):
            raise
    print("ok - exactly once")

    # 3. Written: gone from the store.
    end = time.monotonic() + 10
    while rows(state) and time.monotonic() < end:
        time.sleep(0.2)
    check(rows(state) == [], "the store still holds %r" % rows(state))
    print("ok - written to the authenticated S2S stream, the stanza left the store")
    alice.disconnect()
    g1.stop()
    print("ok - psycgate-1 stopped cleanly on SIGTERM (exit 0)")


def main():
    return scenario(__doc__, "s2s keep", "psycgate-bridge-s2s-keep-", 150, scenario_body)


if __name__ == "__main__":
    sys.exit(main())
