#!/usr/bin/python3
"""Transport addresses: an XMPP user reaches a PSYC person through psycgate
(issue 6, bridge tests 2 and 3; DESIGN.md §2.1 and §2.3).

Usage: test_standalone.py PATH/TO/psycgate [s2s|component]

s2s (default, "standalone S2S"):
  Prosody xmpp.test (alice, s2s enabled, DNS from fakedns) --S2S dialback--
  psycgate-1 ([gateway] host = gw.test, [s2s] domain = gw.test,
  [bridge] transport = gw.test, S2S listener where fakedns' SRV
  _xmpp-server._tcp.gw.test points) --PSYC-- psycgate-2 (host psyc2.test,
  whose ~echo answers).
component (transport domain behind the local server):
  Prosody xmpp.test (alice, no s2s) --XEP-0114 component psyc.xmpp.test--
  psycgate-1 ([gateway] host = gw.test, [component] domain = psyc.xmpp.test,
  [bridge] transport = psyc.xmpp.test) --PSYC-- psycgate-2 (psyc2.test).

Everything on 127.0.0.1, DNS only from fakedns (gw.test, xmpp.test,
psyc2.test A 127.0.0.1; SRV _psyc._tcp.{gw,psyc2}.test and, for s2s,
_xmpp-server._tcp.{gw,xmpp}.test). Checks:
  1. alice sends "hi" to echo%psyc2.test@T and gets "echo: hi" back from
     that JID, type chat: Prosody -> (S2S | component) -> psycgate-1 ->
     PSYC -> psycgate-2's ~echo -> PSYC -> psycgate-1 -> (S2S | component)
     -> Prosody -> alice;
  2. the hops are logged: psycgate-1 sent _message_private for
     psyc://psyc2.test/~echo from alice's uniform on gw.test; psycgate-2's
     echo answered that uniform; psycgate-1 took the answer for XMPP;
  3. a message to a PSYC person that does not exist (nobody%psyc2.test@T)
     comes back as an error stanza from that JID;
  4. the local services of the domain still answer: echo@T;
  5. both psycgates stop on SIGTERM with exit 0 (LSan under ASan).
Exit 0 = pass; a missing Prosody or slixmpp is a failure, not a skip.
"""
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bridgetest import (IP, Client, Fail, FakeDNS, Prosody, Psycgate, bare, check,  # noqa: E402
                        close_loop, deadline, free_ports, psycgate_config, wait_line)

XMPP = "xmpp.test"
GW = "gw.test"          # psycgate-1's PSYC host (and in s2s mode its XMPP domain)
P2 = "psyc2.test"       # psycgate-2's PSYC host
COMP = "psyc.xmpp.test"
SECRET = "transport-secret"
ALICE = "alice@" + XMPP
U_ALICE = "psyc://%s/~alice@%s" % (GW, XMPP)   # README "Addresses", TRANSPORT
U_ALICE_ESC = "psyc://%s/~alice%%40%s" % (GW, XMPP)  # in case '@' is percent-encoded
U_ECHO = "psyc://%s/~echo" % P2


def main():
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and sys.argv[2] not in ("s2s", "component")):
        print(__doc__)
        return 2
    binary = os.path.abspath(sys.argv[1])
    mode = sys.argv[2] if len(sys.argv) == 3 else "s2s"
    try:
        import slixmpp  # noqa: F401
    except ImportError:
        print("FAIL: python3-slixmpp is not installed (run scripts/install-deps)")
        return 1
    deadline(200)  # below the ctest TIMEOUT (240): cleanup must still run
    T = GW if mode == "s2s" else COMP
    peer = "echo%%%s@%s" % (P2, T)
    tmp = tempfile.mkdtemp(prefix="psycgate-bridge-%s-" % mode)
    os.chmod(tmp, 0o755)
    ok = False
    problems = []
    try:
        with contextlib.ExitStack() as st:
            psyc1, psyc2, gw_s2s, p_s2s = free_ports(4, IP)
            srv = {"_psyc._tcp." + GW: ["%s:%d" % (GW, psyc1)], "_psyc._tcp." + P2: ["%s:%d" % (P2, psyc2)]}
            if mode == "s2s":
                srv["_xmpp-server._tcp." + GW] = ["%s:%d" % (GW, gw_s2s)]
                srv["_xmpp-server._tcp." + XMPP] = ["%s:%d" % (XMPP, p_s2s)]
            dns = st.enter_context(FakeDNS(tmp, a={GW: IP, XMPP: IP, P2: IP}, srv=srv))
            if mode == "s2s":
                pro = st.enter_context(Prosody(tmp, domain=XMPP, s2s=True, s2s_port=p_s2s, dns_port=dns.port))
            else:
                pro = st.enter_context(Prosody(tmp, domain=XMPP, component=(COMP, SECRET)))
            pro.start()
            g2 = st.enter_context(Psycgate(tmp, binary, psycgate_config(
                P2, os.path.join(tmp, "state-2"), psyc2, dns_port=dns.port), name="psycgate-2"))
            if mode == "s2s":
                conf = psycgate_config(GW, os.path.join(tmp, "state-1"), psyc1, dns_port=dns.port,
                                       s2s_listen="%s:%d" % (IP, gw_s2s), s2s_domain=GW, transport=GW)
            else:
                conf = psycgate_config(GW, os.path.join(tmp, "state-1"), psyc1, dns_port=dns.port,
                                       component=COMP, comp_port=pro.comp_port, secret=SECRET, transport=COMP)
            g1 = st.enter_context(Psycgate(tmp, binary, conf, name="psycgate-1"))
            g2.wait_log(r"listening on 127\.0\.0\.1:%d" % psyc2, 15)
            if mode == "s2s":
                g1.wait_log(r"listening for XMPP S2S on %s:%d" % (IP, gw_s2s), 15)
            else:
                g1.wait_log(r"component %s linked to %s:%d" % (re.escape(COMP), IP, pro.comp_port), 15)
            print("ok - %s mode: Prosody, psycgate-1 (%s, transport %s) and psycgate-2 (%s) up" % (mode, GW, T, P2))

            alice = Client(ALICE, "alicepw", IP, pro.c2s_port)
            alice.connect(20)
            alice.send(peer, "hi")
            r = alice.wait_message(r"^echo: ", 40)
            check(str(r) == "echo: hi", "the answer is %r (expected 'echo: hi')" % str(r))
            check(bare(r.frm) == peer, "the answer came from %s, expected %s" % (r.frm, peer))
            check(r.type == "chat", "the answer has type %r, expected chat" % r.type)
            print("ok - alice got %r from %s (type %s)" % (str(r), r.frm, r.type))
            if mode == "s2s":
                g1.wait_log(r"s2s-in: %s -> %s authenticated \(dialback" % (re.escape(XMPP), re.escape(GW)), 5)
                g1.wait_log(r"s2s-out: %s -> %s authenticated \(dialback" % (re.escape(GW), re.escape(XMPP)), 5)
                print("ok - S2S both ways with dialback between xmpp.test and gw.test")

            # the hops
            line = wait_line(g1, ["<message/> from " + ALICE, "to " + peer, "-> _message_private to " + U_ECHO],
                             "psycgate-1: alice's message to PSYC", 5)
            print("ok - psycgate-1 XMPP -> PSYC: %s" % line.strip())
            line = wait_line(g2, ["echo: answering _message_private to ", (U_ALICE, U_ALICE_ESC)], "psycgate-2: the echo's answer to alice", 5)
            print("ok - psycgate-2 echo: %s" % line.strip())
            line = wait_line(g1, ["_message_private from %s to " % U_ECHO, (U_ALICE, U_ALICE_ESC),
                                  "-> <message/> from %s to %s" % (peer, ALICE)],
                             "psycgate-1: the echo's answer to XMPP", 5)
            print("ok - psycgate-1 PSYC -> XMPP: %s" % line.strip())

            # an unknown PSYC person: an error stanza back to alice. Checked
            # softly, so that the remaining steps still run; it fails the test
            # at the end.
            nobody = "nobody%%%s@%s" % (P2, T)
            alice.send(nobody, "anyone?")
            try:
                r = alice.wait_message(None, 15, accept_errors=True)
                # psyc2.test answers _error_unknown_name_user from its root
                # (psyc://psyc2.test/); the error stanza must still come from
                # the JID alice wrote to (what the gateway answers for)
                if r.type == "error" and bare(r.frm) == nobody:
                    print("ok - %s: error <%s/> from %s (psyc2.test has no such person)" % (nobody, r, r.frm))
                else:
                    problems.append("a message to %s came back as %s %r from %s (expected an error)"
                                    % (nobody, r.type, str(r), r.frm))
            except Fail as e:
                line = wait_line(g1, ["_error_unknown_name_user from psyc://%s/" % P2], "the error at psycgate-1", 1)
                problems.append("no error stanza for the message to %s (%s); psycgate-1 logged: %s"
                                % (nobody, e, line.strip()))
            for x in problems[-1:]:
                print("not ok - %s" % x)

            # the domain's own echo is still local
            alice.send("echo@" + T, "local")
            r = alice.wait_message(r"^echo: local$", 30)
            check(bare(r.frm) == "echo@" + T, "local echo from %s" % r.frm)
            print("ok - echo@%s answered locally" % T)
            alice.disconnect()

            if mode == "component":
                check(not [x for x in dns.queries() if "_xmpp-server." in x], "S2S lookups in component mode")
            g1.stop(20)
            g2.stop(20)
            print("ok - both psycgates stopped cleanly on SIGTERM (exit 0)")
            check(not problems, "; ".join(problems))
            ok = True
    except (Fail, subprocess.SubprocessError, OSError) as e:
        print("FAIL: %s" % e)
    finally:
        close_loop()
        shutil.rmtree(tmp, ignore_errors=True)
    name = "standalone S2S" if mode == "s2s" else "transport component"
    print("PASS bridge %s" % name if ok else "FAIL bridge %s" % name)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
