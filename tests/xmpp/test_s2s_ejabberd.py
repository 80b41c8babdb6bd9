#!/usr/bin/python3
"""psycgate's XMPP S2S face against a real ejabberd 23.01 (issue 5, test 3).

Usage: test_s2s_ejabberd.py PATH/TO/psycgate   (as root: ejabberdctl su's
to the ejabberd user; a missing ejabberd or non-root run is a FAILURE)

ejabberd (tests/xmpp/xmpptest.py: private config, spool and logs; Erlang's
resolver pointed at our fakedns through inetrc; glibc's A lookups through a
private /etc/hosts bind-mounted in its own mount namespace) serves
ejab.test, with s2s STARTTLS optional and mod_s2s_dialback. psycgate serves
gw.test with [s2s] tls = optional. A slixmpp client alice@ejab.test sends
to echo@gw.test:
  1. ejabberd opens a stream to gw.test, STARTTLS, then dialback; psycgate
     asks ejabberd (authoritative) with db:verify, gets valid;
  2. the echo answer leaves on psycgate's own stream to ejab.test (STARTTLS,
     dialback); ejabberd verifies the key with a dedicated verify-only
     connection to gw.test (its habit, harness notes §3), which psycgate
     answers from its dialback secret;
  3. alice gets "echo: ..."; a XEP-0199 ping to gw.test is answered;
  4. SIGTERM stops psycgate cleanly (exit 0; LSan under ASan).
Exit 0 = pass.
"""
import contextlib
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xmpptest import (Client, Ejabberd, Fail, FakeDNS, Psycgate, check, close_loop,  # noqa: E402
                      free_ports)

GW = "gw.test"
EJ = "ejab.test"
IP = "127.0.0.1"


def gw_config(state, s2s_port, psyc_port, dns_port):
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
tls = optional
ping_interval = 0
give_up = 30
[dns]
server = %(ip)s:%(dns)d
timeout_ms = 500
""" % {"gw": GW, "state": state, "ip": IP, "s2s": s2s_port, "psyc": psyc_port, "dns": dns_port}


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    binary = os.path.abspath(sys.argv[1])
    tmp = tempfile.mkdtemp(prefix="psycgate-s2s-ejabberd-")
    os.chmod(tmp, 0o755)
    gw_port, e_s2s, psyc_port = free_ports(3, IP)
    try:
        with contextlib.ExitStack() as st:
            dns = st.enter_context(FakeDNS(tmp, a={GW: IP, EJ: IP},
                                           srv={"_xmpp-server._tcp." + GW: ["%s:%d" % (GW, gw_port)],
                                                "_xmpp-server._tcp." + EJ: ["%s:%d" % (EJ, e_s2s)]}))
            ej = st.enter_context(Ejabberd(tmp, s2s=True, s2s_port=e_s2s, dns_port=dns.port,
                                           s2s_starttls="optional", hosts={GW: IP}))
            ej.start(90)
            gw = st.enter_context(Psycgate(tmp, binary, gw_config(os.path.join(tmp, "gwstate"), gw_port,
                                                                  psyc_port, dns.port)))
            try:
                gw.wait_log(r"listening for XMPP S2S on %s:%d" % (IP, gw_port), 15)
                alice = Client("alice@" + EJ, "alicepw", IP, ej.c2s_port)
                alice.connect(30)
                alice.send("echo@" + GW, "hello ejabberd")
                r = alice.wait_message(r"^echo: hello ejabberd$", 60)
                check(str(r.frm).startswith("echo@" + GW), "echo came from %s" % r.frm)
                print("ok   echo round trip: %r from %s" % (str(r), r.frm))
                gw.wait_log(r"s2s-in: %s -> %s authenticated \(dialback, TLSv1\.[23]\)" % (EJ, GW), 5)
                gw.wait_log(r"s2s-out: %s -> %s authenticated \(dialback, TLSv1\.[23]\)" % (GW, EJ), 5)
                gw.wait_log(r"db:verify %s asks about our key for %s id=\S+: valid" % (EJ, GW), 5)
                print("ok   both directions: STARTTLS + dialback; ejabberd's db:verify answered")
                t = alice.ping(GW)
                check(t == "result", "ping to %s answered with %s" % (GW, t))
                print("ok   XEP-0199 ping to %s: result" % GW)
                alice.disconnect()
                gw.stop(20)
                print("ok   clean stop (exit 0)")
            except Exception:
                gw.dump()
                ej.dump()
                raise
    except Fail as e:
        print("FAIL: %s" % e)
        return 1
    finally:
        close_loop()
        shutil.rmtree(tmp, ignore_errors=True)
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
