#!/usr/bin/python3
"""A place on its distribution tree in a loopback federation (issue 7:
"Prosody users in a place hosted by a psycgate on another server", over
trees; MUC over places).

Usage: test_places.py PATH/TO/psycgate [N]

N (default 10) psycgate processes (tests/mcast/mcastfed.py: each its own
PSYC host gK.test and XMPP domain with a fake XEP-0114 server), fan-out 2.
The place psyc://g0.test/@room is hosted by gateway 0; 3 occupants at each
of g1..g(N-1) join it as the MUC room *room@g0.test.

  1. the joins: every occupant gets its self-presence (110) once, and the
     place's casts go down a tree (some gateways relay for others);
  2. a burst of 20 groupchat messages of one occupant: every occupant gets
     each exactly once, in the order they were sent;
  3. a burst of 30 during which a relay with children is stopped after the
     10th and killed after the 20th (SIGKILL): the occupants on every
     other server still get all 30 once and in order (re-parenting, gaps
     resent by the place's master);
  4. with `[multicast] enabled = no` (the bench's baseline: one copy per
     member) a second federation delivers a message to every occupant
     once;
  5. every gateway stops on SIGTERM with exit 0 (LSan under ASan).
Exit 0 = pass.
"""
import contextlib
import os
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mcastfed import Fail, Federation, check, run_main  # noqa: E402
from xmpptest import deadline  # noqa: E402

PER = 3


def wait(fed, pred, what, timeout):
    end = time.monotonic() + timeout
    while not pred():
        for k, g in enumerate(fed.gws):
            check(g.alive() or getattr(g, "killed", False), "gw%d died:\n%s" % (k, g.log_text()[-3000:]))
        check(time.monotonic() < end, "timed out after %d s: %s" % (timeout, what))
        time.sleep(0.1)


def heard_all(fed, occ, bodies):
    """{occupant jid: [bodies in arrival order]} for the given bodies."""
    want = set(bodies)
    seen = {}
    for x in fed.xmpp[1:]:
        for t, name, to, frm, typ, _, b in x.muc_records():
            if name == "message" and typ == "groupchat" and b in want:
                seen.setdefault(to, []).append(b)
    return {jid: seen.get(jid, []) for jid, _, _ in occ}


def expect(fed, occ, bodies, what, timeout):
    end = time.monotonic() + timeout
    while True:
        got = heard_all(fed, occ, bodies)
        bad = {j: s for j, s in got.items() if s != bodies}
        if not bad:
            print("ok - %s: %d occupants got all %d messages once, in order" % (what, len(occ), len(bodies)))
            return
        if time.monotonic() > end:
            for j, s in list(bad.items())[:4]:
                print("# %s got %s" % (j, s))
            raise Fail("%s: %d occupants did not get the %d messages exactly once in order"
                       % (what, len(bad), len(bodies)))
        time.sleep(0.1)


def join_all(fed, occ):
    fed.join(occ)
    wait(fed, lambda: len(fed.joined(occ)) == len(occ), "%d joins" % len(occ), 60)


def burst(fed, speaker, prefix, count, gap, actions=None):
    bodies = ["%s%d" % (prefix, i) for i in range(1, count + 1)]
    for i, b in enumerate(bodies, 1):
        fed.groupchat(speaker, b)
        if actions and i in actions:
            actions[i]()
        time.sleep(gap)
    return bodies


def main():
    if len(sys.argv) not in (2, 3):
        print(__doc__)
        return 2
    binary = os.path.abspath(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) == 3 else 10
    deadline(170)  # below the ctest TIMEOUT (180)
    tmp = tempfile.mkdtemp(prefix="psycgate-mcast-places-")
    with contextlib.ExitStack() as st:
        fed = Federation(tmp, binary, n, 0, fanout=2, name="places")
        st.callback(fed.close)
        fed.start()
        occ = fed.occupants(PER)
        # one per server first (opens the circuits), then the rest
        join_all(fed, [o for o in occ if o[0].startswith("o0@")])
        join_all(fed, [o for o in occ if not o[0].startswith("o0@")])
        print("ok - %d occupants on %d servers joined *room@g0.test (self-presence 110 each)" % (len(occ), n - 1))
        speaker = occ[0]
        expect(fed, occ, burst(fed, speaker, "w", 1, 0), "warm-up", 30)
        time.sleep(1.5)  # new routes relay after their first second (gateway/mcast_ctx.c)
        expect(fed, occ, burst(fed, speaker, "v", 1, 0), "second warm-up", 30)
        tree = fed.tree()
        relays = [k for k, (parent, kids) in tree.items() if kids > 0]
        check(relays, "no relay in the place's tree: %s" % tree)
        print("ok - the place's casts go down a tree: relays %s" % ["g%d" % k for k in relays])

        # 2. a burst through the tree
        expect(fed, occ, burst(fed, speaker, "a", 20, 0.05), "burst through the tree", 30)

        # 3. a relay killed during a burst (not the speaker's server)
        cands = [k for k in relays if k != speaker[2]]
        check(cands, "every relay is the speaker's server")
        victim = cands[0]

        def freeze():
            fed.gws[victim].killed = True
            os.kill(fed.gws[victim].proc.pid, signal.SIGSTOP)

        def kill():
            fed.gws[victim].kill()
            print("ok - relay g%d stopped after message 10, killed after 20 (SIGKILL)" % victim)

        bodies = burst(fed, speaker, "b", 30, 0.03, {10: freeze, 20: kill})
        rest = [o for o in occ if o[2] != victim]
        expect(fed, rest, bodies, "burst with a relay killed", 40)
        fed.gws[0].wait_log(r"link lost: routed around it", 10)
        print("ok - the place's master routed around g%d" % victim)
        fed.gws[victim].killed = True
        fed.stop_all()
        print("ok - %d gateways stopped cleanly on SIGTERM (exit 0)" % (n - 1))

        # 4. the per-member baseline
        base = Federation(tmp, binary, 5, 0, fanout=2, enabled=False, name="places-baseline")
        st.callback(base.close)
        base.start()
        bocc = base.occupants(PER)
        join_all(base, bocc)
        expect(base, bocc, burst(base, bocc[0], "u", 3, 0.05), "[multicast] enabled = no, one copy per member", 30)
        check(base.gws[0].count(r"one per member \(\[multicast\] enabled = no\)") >= 3,
              "the place did not cast one copy per member")
        base.stop_all()
        print("ok - baseline federation stopped cleanly")
    print("PASS mcast places")
    return 0


if __name__ == "__main__":
    run_main(main)
