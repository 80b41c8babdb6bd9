#!/usr/bin/python3
"""psycgate as a XEP-0114 component of a real Prosody (issue 5, test 4).

Usage: test_component_prosody.py PATH/TO/psycgate

Everything on 127.0.0.1, free ports, in a temporary directory (harness:
xmpptest.py; nothing under /etc is read or changed):
  1. a private Prosody (c2s + component psyc.xmpp.test with a secret, no s2s;
     user alice registered with prosodyctl) in the foreground (-F);
  2. psycgate with [component] pointing at Prosody's component port; the
     log must say "component psyc.xmpp.test linked to 127.0.0.1:PORT";
  3. a slixmpp client alice@xmpp.test sends "hello" to echo@psyc.xmpp.test
     and must get "echo: hello" from it;
  4. Prosody is stopped: psycgate logs the loss and reconnect attempts
     (backoff 1 s, 2 s, ...);
  5. Prosody is started again on the same ports: psycgate relinks and the
     echo answers again;
  6. SIGTERM stops psycgate cleanly (exit 0; under ASan that includes LSan).
Every wait is bounded; every process is killed at the end. Exit 0 = pass;
a missing Prosody or slixmpp is a failure, not a skip.
"""
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xmpptest import (Fail, Prosody, Psycgate, chat_roundtrip,
                      check, close_loop, deadline, free_port)  # noqa: E402

DOMAIN = "xmpp.test"
COMPONENT = "psyc.xmpp.test"
# A second domain Prosody does not know: its link is refused with a stream
# error and retried with backoff, without disturbing the first one. (Prosody
# 0.12 answers an unknown host with a header without id and then
# <host-unknown/>, which is what must be logged.)
UNKNOWN = "nope.xmpp.test"
SECRET = "s3cr3t-component"
USER, PASSWORD = "alice", "alicepw"
IP = "127.0.0.1"


def echo(prosody, text):
    return chat_roundtrip("%s@%s/test" % (USER, DOMAIN), PASSWORD, IP, prosody.c2s_port,
                          "echo@" + COMPONENT, text, r"^echo: ", 40)


def main():
    if len(sys.argv) != 2:
        print("usage: test_component_prosody.py PSYCGATE", file=sys.stderr)
        return 2
    binary = sys.argv[1]
    try:
        import slixmpp  # noqa: F401
    except ImportError:
        print("FAIL: python3-slixmpp is not installed (run scripts/install-deps)")
        return 1

    deadline(100)  # below the ctest TIMEOUT: cleanup must still run
    tmp = tempfile.mkdtemp(prefix="psycgate-comp-")
    ok = False
    gw = None
    try:
        with contextlib.ExitStack() as st:
            prosody = st.enter_context(Prosody(tmp, domain=DOMAIN, users={USER: PASSWORD},
                                               component=(COMPONENT, SECRET), ip=IP))
            prosody.start()
            comp_port = prosody.comp_port
            print("ok - Prosody listening: c2s %d, component %d" % (prosody.c2s_port, comp_port))

            gw = st.enter_context(Psycgate(tmp, binary,
                "[gateway]\nhost = localhost\nstate_dir = %s\nlog_level = debug\n"
                "[psyc]\nlisten = 127.0.0.1:%d\nlisten_tls = none\n"
                "[tls]\ngenerate_self_signed = no\n"
                "[s2s]\nlisten = none\n"
                "[component]\ndomain = %s, %s\nhost = %s\nport = %d\nsecret = %s\n"
                % (os.path.join(tmp, "var"), free_port(), COMPONENT, UNKNOWN, IP, comp_port, SECRET)))
            linked = r"component %s linked to %s:%d" % (re.escape(COMPONENT), re.escape(IP), comp_port)
            gw.wait_log(linked, 15)
            print("ok - psycgate linked as %s" % COMPONENT)
            gw.wait_log(r"component %s link failed: stream error <host-unknown/>.*; reconnecting in 1 s"
                        % re.escape(UNKNOWN), 15)
            print("ok - %s refused by Prosody, logged, retried" % UNKNOWN)

            r = echo(prosody, "hello")
            check(r.frm.split("/")[0] == "echo@" + COMPONENT, "echo came from %r" % r.frm)
            check(r == "echo: hello", "echo body %r" % r)
            check(r.type == "chat", "echo type %r" % r.type)
            print("ok - alice got %r from %s" % (str(r), r.frm))

            prosody.stop()
            gw.wait_log(r"component %s link lost: .*reconnecting in 1 s" % re.escape(COMPONENT), 15)
            gw.wait_log(r"component %s link failed: connect failed: .*reconnecting in 2 s"
                        % re.escape(COMPONENT), 15)
            print("ok - loss and reconnect attempts logged with backoff")
            check(gw.alive(), "psycgate died when Prosody went away")

            prosody.start()
            gw.wait_log(linked, 30, count=2)
            print("ok - relinked after Prosody came back")
            r = echo(prosody, "again")
            check(r == "echo: again", "echo body after relink %r" % r)
            print("ok - echo answers after the relink")

            gw.stop(15)
            check(gw.count(r"component %s link closed: gateway shutting down" % re.escape(COMPONENT)) == 1,
                  "no clean close of the link in the log")
            print("ok - SIGTERM: link closed, exit 0")
            ok = True
    except (Fail, subprocess.SubprocessError, OSError) as e:
        print("FAIL: %s" % e)
    finally:
        if gw and ok:  # on a failure, leaving the with block dumped every log
            gw.dump(r" comp ")
        shutil.rmtree(tmp, ignore_errors=True)
        close_loop()
    print("PASS component link with Prosody" if ok else "FAIL component link with Prosody")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
