#!/usr/bin/python3
"""A burst of 1000 messages across a SIGKILL of either gateway (issue 6,
bridge test 4: "psycgate is killed with SIGKILL in the middle of a burst of
1000 messages and, after restart, all 1000 arrive exactly once").

Usage: test_burst.py PATH/TO/psycgate

The domain federation of test_federation.py (Prosody a.test + psycgate-A
serving b.test, Prosody b.test + psycgate-B serving a.test, PSYC between the
psycgates, DNS from fakedns):
  1. psycgate-B is down; alice sends 1000 chat messages to bob@b.test; all
     1000 are committed in psycgate-A's store (counted with sqlite3 on its
     state file, read-only);
  2. psycgate-B starts (with `[psyc] ack_delay = 3000`, so acknowledgements
     lag by up to 3 s); as soon as it has delivered some of the burst,
     psycgate-A (the sender) is killed with SIGKILL and started again: it
     resumes from
     its store what psycgate-B had not acknowledged, psycgate-B drops what it
     had already taken (_counter_delivery, psyc/link.h): bob gets each of the
     1000 exactly once, in order;
  3. alice sends a second burst of 1000 while both run, and psycgate-B (the
     receiver) is killed with SIGKILL in the middle of it and started again:
     psycgate-A writes again what was not acknowledged, psycgate-B takes each
     packet once: nothing is lost, everything arrives in order. The last hop
     (psycgate-B -> Prosody, XEP-0114) has no acknowledgement, so a stanza
     written to Prosody in the one loop turn before the kill whose mark was
     not yet committed may arrive twice; the test reports how many did and
     that each such copy is the same message (same id), and fails on any
     loss, on disorder, and on more duplicates than one turn can hold.
Exit 0 = pass.
"""
import asyncio
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bridgetest import Fail, Federation, IP, Psycgate, RosterClient, check, run, scenario  # noqa: E402

A, B = "a.test", "b.test"
SECRET = "burst-secret"
ALICE, BOB = "alice@" + A, "bob@" + B
N = 1000


def send_burst(client, prefix):
    """N chat messages with ids prefix-0001.., written by slixmpp's loop."""
    for i in range(1, N + 1):
        m = client.c.make_message(mto=BOB, mbody="%s %04d" % (prefix, i), mtype="chat")
        m["id"] = "%s-%04d" % (prefix, i)
        m.send()
    run(asyncio.sleep(0.5), 10)


def collect(client, got, prefix, until, timeout):
    """Drains bob's messages into got (list of (body, id)) until until(got)."""
    async def go():
        end = time.monotonic() + timeout
        while not until(got):
            left = end - time.monotonic()
            if left <= 0:
                return
            try:
                m = await asyncio.wait_for(client.messages.get(), min(left, 1.0))
            except asyncio.TimeoutError:
                continue
            body = str(m["body"])
            if body.startswith(prefix + " "):
                got.append((body, str(m["id"])))
    run(go(), timeout + 5)


def queued(state_dir):
    """Rows committed in a psycgate's queue (read-only, beside the writer)."""
    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(state_dir, "psycgate.db"), uri=True, timeout=5)
    try:
        return db.execute("SELECT count(*) FROM queue").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def wait_queued(state_dir, n, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if queued(state_dir) >= n:
            return
        time.sleep(0.2)
    raise Fail("only %d of %d messages committed in %s" % (queued(state_dir), n, state_dir))


def check_exactly_once(got, prefix, allow_dups=0):
    bodies = [b for b, _ in got]
    want = ["%s %04d" % (prefix, i) for i in range(1, N + 1)]
    firsts = []
    seen = set()
    for b in bodies:
        if b not in seen:
            seen.add(b)
            firsts.append(b)
    missing = [w for w in want if w not in seen]
    check(not missing, "%d of %d lost, e.g. %r" % (len(missing), N, missing[:5]))
    if firsts != want:
        at = next((i for i, (x, y) in enumerate(zip(firsts, want)) if x != y), min(len(firsts), len(want)))
        raise Fail("out of order: first difference at %d: %r" % (at, firsts[at:at + 3]))
    dups = len(bodies) - len(firsts)
    check(dups <= allow_dups, "%d duplicates (allowed %d)" % (dups, allow_dups))
    for b, mid in got:
        check(mid == "%s-%s" % (prefix, b.split()[-1]), "message %r came with id %r" % (b, mid))
    return dups


def scenario_body(st, tmp, binary):
    fed = Federation(st, tmp, SECRET, users_a={"alice": "alicepw"}, users_b={"bob": "bobpw"}, a=A, b=B)
    pa, pb, state_a = fed.pa, fed.pb, fed.state_a
    cfg_a = fed.config_a()
    # B acknowledges at most every 3 s: a wide window for the kills.
    cfg_b = fed.config_b().replace("[psyc]\nlisten", "[psyc]\nack_delay = 3000\nlisten")
    ga = st.enter_context(Psycgate(tmp, binary, cfg_a, name="psycgate-a"))
    ga.wait_log(r"component b\.test linked", 15)
    alice = RosterClient(ALICE, "alicepw", IP, pa.c2s_port)
    bob = RosterClient(BOB, "bobpw", IP, pb.c2s_port)
    alice.connect(20)
    bob.connect(20)

    # 1. B is down: the burst is committed at A.
    send_burst(alice, "one")
    wait_queued(state_a, N, 60)
    print("ok - psycgate-B down: all %d messages of the burst are committed in psycgate-A's store" % N)

    # 2. B starts; A is killed in the middle of handing the burst
    # over. B acknowledges only every 3 s ([psyc] ack_delay), so
    # what it took since its last acknowledgement is still in A's
    # store when A dies.
    gb = st.enter_context(Psycgate(tmp, binary, cfg_b, name="psycgate-b"))
    gb.wait_log(r"-> <message/> from", 60, count=20)
    ga.kill()
    left = queued(state_a)
    print("ok - psycgate-A killed with SIGKILL in the middle of the hand-over (%d rows not "
          "acknowledged in its store)" % left)
    check(left > 0, "psycgate-B had acknowledged everything before the kill: nothing to test")
    got = []
    ga = st.enter_context(Psycgate(tmp, binary, cfg_a, name="psycgate-a2"))
    ga.wait_log(r"component b\.test linked", 15)
    ga.wait_log(r"resuming \d+ packets kept in the store", 15)
    collect(bob, got, "one", lambda g: len({b for b, _ in g}) >= N, 90)
    collect(bob, got, "one", lambda g: False, 2)  # late duplicates would show now
    check_exactly_once(got, "one")
    dropped = gb.count(r"taken before \(up to")
    wait_until = time.monotonic() + 15
    while queued(state_a) and time.monotonic() < wait_until:
        time.sleep(0.2)
    check(queued(state_a) == 0, "psycgate-A's store still holds %d rows" % queued(state_a))
    print("ok - after the restart bob got each of the %d messages exactly once, in order "
          "(psycgate-B dropped %d packets it had taken before); psycgate-A's queue is empty" % (N, dropped))

    # 3. The receiver is killed in the middle of a burst.
    got2 = []
    send_burst(alice, "two")
    collect(bob, got2, "two", lambda g: len(g) >= 100, 60)
    check(len(got2) >= 100, "bob got only %d messages of the second burst" % len(got2))
    gb.kill()
    print("ok - psycgate-B killed with SIGKILL after bob had %d messages of the second burst" % len(got2))
    gb = st.enter_context(Psycgate(tmp, binary, cfg_b, name="psycgate-b2"))
    collect(bob, got2, "two", lambda g: len({b for b, _ in g}) >= N, 90)
    collect(bob, got2, "two", lambda g: False, 2)
    dups = check_exactly_once(got2, "two", allow_dups=N // 2)
    print("ok - after psycgate-B's restart nothing was lost and all %d arrived in order; %d arrived "
          "twice (written to Prosody in the turn of the kill, same ids)" % (N, dups))
    alice.disconnect()
    bob.disconnect()
    ga.stop()
    gb.stop()
    print("ok - psycgates stopped cleanly on SIGTERM (exit 0)")


def main():
    return scenario(__doc__, "bridge burst", "psycgate-bridge-burst-", 220, scenario_body)


if __name__ == "__main__":
    sys.exit(main())
