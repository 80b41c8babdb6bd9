#!/usr/bin/python3
"""Membership digests between two psycgates (issue 7; gateway/digest_peer.c).

Usage: test_digest.py PATH/TO/psycgate

  Prosody a.test (alice, amy) -- component b.test -- psycgate-A (host a.test)
  Prosody b.test (bob)        -- component a.test -- psycgate-B (host b.test)
  both with [multicast] digest_interval = 2

Everything on 127.0.0.1 with free ports; DNS only from fakedns. Checks:
  1. alice and amy subscribe to bob, bob approves: the stores of both
     gateways hold the relations, and a digest round finds them equal;
  2. psycgate-A is stopped and its store corrupted with sqlite3 (amy's
     relation with bob deleted, so psycgate-A's fan-out would skip her;
     alice's given a stale pending-out);
  3. psycgate-A starts again: within a digest interval or two the
     gateways exchange their lists and psycgate-A repairs both relations
     (bob's side is the authority for who sees bob), logged per relation
     and counted ("digest_repairs:b.test" = 2 in the store's counters);
     bob's next presence reaches amy again;
  4. both psycgates stop cleanly on SIGTERM.
Exit 0 = pass; a missing Prosody or slixmpp is a failure, not a skip.
"""
import os
import sqlite3
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bridgetest import (Fail, Federation, IP, Psycgate, RosterClient, bare, check, find_line,  # noqa: E402
                        scenario, wait_line)

A, B = "a.test", "b.test"
SECRET = "digest-secret"
BOB = "bob@" + B
EXTRA = "[multicast]\ndigest_interval = 2\n"


def db_rows(path):
    con = sqlite3.connect(path)
    try:
        return dict(((l, r), s) for l, r, s in con.execute("SELECT local, remote, state FROM subscription"))
    finally:
        con.close()


def wait_either(pairs, timeout):
    """The first log line holding its needle, from any of (gateway, needle)."""
    end = time.monotonic() + timeout
    while True:
        for g, needle in pairs:
            line = find_line(g, [needle])
            if line:
                return line
        if time.monotonic() > end:
            raise Fail("no log line with any of %r within %g s" % ([n for _, n in pairs], timeout))
        time.sleep(0.1)


def scenario_body(st, tmp, binary):
    clients = []
    fed = Federation(st, tmp, SECRET, users_a={"alice": "alicepw", "amy": "amypw"},
                     users_b={"bob": "bobpw"}, a=A, b=B)
    pa, pb, state_a = fed.pa, fed.pb, fed.state_a
    ga = st.enter_context(Psycgate(tmp, binary, fed.config_a(extra=EXTRA), name="psycgate-a"))
    gb = st.enter_context(Psycgate(tmp, binary, fed.config_b(extra=EXTRA), name="psycgate-b"))
    ga.wait_log(r"component b\.test linked to", 15)
    gb.wait_log(r"component a\.test linked to", 15)

    bob = RosterClient(BOB, "bobpw", IP, pb.c2s_port)
    bob.connect(20)
    clients.append(bob)
    users = {}
    for u in ("alice", "amy"):
        c = RosterClient("%s@%s" % (u, A), u + "pw", IP, pa.c2s_port)
        c.connect(20)
        clients.append(c)
        users[u] = c
    # 1. alice and amy see bob
    for c in users.values():
        c.subscribe(BOB)
        bob.wait_presence(lambda p, j=c.jid: p["type"] == "subscribe" and bare(p["from"]) == j,
                          "subscribe from " + c.jid, 30)
        bob.approve(c.jid)
        c.wait_presence(lambda p: p["type"] == "subscribed" and bare(p["from"]) == BOB,
                        "subscribed from bob", 30)
    # either side may ask first: the one asked logs the agreement
    line = wait_either([(ga, "digest with psyc://b.test/: our 2 relations agree"),
                        (gb, "digest with psyc://a.test/: our 2 relations agree")], 15)
    print("ok - alice and amy subscribed to bob; the digests agree: %s" % line.split(" digest ")[-1].strip())

    # 2. psycgate-A loses amy's relation and gets a stale pending-out for alice's
    ga.stop(20)
    db = os.path.join(state_a, "psycgate.db")
    con = sqlite3.connect(db)
    with con:
        n = con.execute("DELETE FROM subscription WHERE local = 'amy@a.test' AND remote = ?",
                        (BOB,)).rowcount
        m = con.execute("UPDATE subscription SET state = 5 WHERE local = 'alice@a.test' AND remote = ?",
                        (BOB,)).rowcount
    con.close()
    check(n == 1 and m == 1, "corrupting psycgate-A's store changed %d and %d rows" % (n, m))
    print("ok - psycgate-A stopped; its store lost amy -> bob and has alice -> bob 'to +pending-out'")

    # 3. back: one exchange repairs both
    before = ga.count(r"digest with psyc://b\.test/: 2 relations repaired")
    ga.start()
    ga.wait_log(r"component b\.test linked to", 15, count=2)
    ga.wait_log(r"digest with psyc://b\.test/: 2 relations repaired", 30, count=before + 1)
    for who, was in (("amy", "none"), ("alice", "to +pending-out")):
        line = wait_line(ga, ["digest repair: subscription %s@a.test -> %s was %s, now to" % (who, BOB, was)],
                         "psycgate-A: repair of %s" % who, 5)
        print("ok - %s" % line.split(" digest ")[-1].strip())
    n = len(users["amy"].presences)
    bob.presence(show="xa", status="after the repair")
    users["amy"].wait_presence(lambda p: bare(p["from"]) == BOB and p["status"] == "after the repair",
                               "bob's presence after the repair", 20, since=n)
    print("ok - bob's presence reaches amy again through psycgate-A")

    for c in clients:
        c.disconnect()
    ga.stop(20)
    gb.stop(20)
    rows = db_rows(db)
    check(rows.get(("amy@a.test", BOB)) == 1 and rows.get(("alice@a.test", BOB)) == 1,
          "psycgate-A's store after the repair: %r" % rows)
    con = sqlite3.connect(db)
    repairs = dict(con.execute("SELECT name, value FROM counter WHERE name LIKE 'digest%'"))
    con.close()
    check(repairs.get("digest_repairs:b.test") == 2, "repair counters: %r" % repairs)
    print("ok - store repaired, counted: %s; both psycgates stopped cleanly" % repairs)


def main():
    return scenario(__doc__, "bridge membership digests", "psycgate-digest-", 150, scenario_body,
                    errors=(subprocess.SubprocessError, OSError, sqlite3.Error))


if __name__ == "__main__":
    sys.exit(main())
