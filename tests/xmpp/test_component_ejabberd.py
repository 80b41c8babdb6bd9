#!/usr/bin/python3
"""psycgate as a XEP-0114 component of a real ejabberd 23.01 (issue 5, test 4).

Usage: test_component_ejabberd.py PATH/TO/psycgate      (as root)

Everything on 127.0.0.1, free ports, in a temporary directory (harness:
xmpptest.py; nothing under /etc is changed: ejabberd runs in a private
mount namespace with its own /etc/hosts and /etc/resolv.conf, no epmd):
  1. a private ejabberd, domain ejab.test, user alice, an ejabberd_service
     listener for psyc.ejab.test with a secret, no s2s;
  2. psycgate with [component] psyc.ejab.test (and nope.ejab.test, which
     ejabberd does not know: refused, logged, retried with backoff) must log
     "component psyc.ejab.test linked to 127.0.0.1:PORT";
  3. a slixmpp client alice@ejab.test sends "hello" to echo@psyc.ejab.test
     and must get "echo: hello" (type chat) back from it;
  4. a second psycgate with a wrong secret is refused (<not-authorized/>);
  5. ejabberd is stopped: psycgate logs the loss and reconnects with backoff;
     ejabberd is started again on the same ports: psycgate relinks and the
     echo answers again;
  6. SIGTERM stops psycgate cleanly (exit 0; under ASan that includes LSan).
Every wait is bounded; every process is killed at the end. Exit 0 = pass;
a missing ejabberd or slixmpp (or not being root) is a failure, not a skip.
"""
import contextlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xmpptest import (Ejabberd, Fail, Psycgate, chat_roundtrip,
                      check, close_loop, deadline, free_port)  # noqa: E402

DOMAIN = "ejab.test"
COMPONENT = "psyc.ejab.test"
UNKNOWN = "nope.ejab.test"
SECRET = "s3cr3t-ejabberd-component"
USER, PASSWORD = "alice", "alicepw"
IP = "127.0.0.1"


def config(tmp, name, domains, port, secret):
    return ("[gateway]\nhost = localhost\nstate_dir = %s\nlog_level = debug\n"
            "[psyc]\nlisten = 127.0.0.1:%d\nlisten_tls = none\n"
            "[tls]\ngenerate_self_signed = no\n"
            "[s2s]\nlisten = none\n"
            "[component]\ndomain = %s\nhost = %s\nport = %d\nsecret = %s\n"
            % (os.path.join(tmp, name + "-var"), free_port(), domains, IP, port, secret))


def echo(ej, text):
    return chat_roundtrip("%s@%s/test" % (USER, DOMAIN), PASSWORD, IP, ej.c2s_port,
                          "echo@" + COMPONENT, text, r"^echo: ", 40)


def main():
    if len(sys.argv) != 2:
        print("usage: test_component_ejabberd.py PSYCGATE", file=sys.stderr)
        return 2
    binary = sys.argv[1]
    try:
        import slixmpp  # noqa: F401
    except ImportError:
        print("FAIL: python3-slixmpp is not installed (run scripts/install-deps)")
        return 1

    deadline(160)  # below the ctest TIMEOUT: cleanup must still run
    tmp = tempfile.mkdtemp(prefix="psycgate-ejcomp-")
    ok = False
    gw = None
    try:
        with contextlib.ExitStack() as st:
            t0 = time.monotonic()
            ej = st.enter_context(Ejabberd(tmp, domain=DOMAIN, users={USER: PASSWORD},
                                           component=(COMPONENT, SECRET), ip=IP))
            ej.start()
            port = ej.comp_port
            print("ok - ejabberd up in %.1f s: c2s %d, component %d"
                  % (time.monotonic() - t0, ej.c2s_port, port))

            domains = "%s, %s" % (COMPONENT, UNKNOWN)
            gw = st.enter_context(Psycgate(tmp, binary, config(tmp, "psycgate", domains, port, SECRET)))
            linked = r"component %s linked to %s:%d" % (re.escape(COMPONENT), re.escape(IP), port)
            gw.wait_log(linked, 15)
            print("ok - psycgate linked as %s" % COMPONENT)
            m = gw.wait_log(r"component %s link failed: (.*); reconnecting in 1 s" % re.escape(UNKNOWN), 15)
            print("ok - %s refused by ejabberd (%s), logged, retried" % (UNKNOWN, m.group(1)))

            r = echo(ej, "hello")
            check(r.frm.split("/")[0] == "echo@" + COMPONENT, "echo came from %r" % r.frm)
            check(r == "echo: hello", "echo body %r" % r)
            check(r.type == "chat", "echo type %r" % r.type)
            print("ok - alice@%s got %r from %s" % (DOMAIN, str(r), r.frm))

            bad = st.enter_context(Psycgate(tmp, binary, config(tmp, "bad", COMPONENT, port, "wrong"),
                                            name="psycgate-bad"))
            m = bad.wait_log(r"component %s link failed: (.*not-authorized.*); reconnecting in 1 s"
                             % re.escape(COMPONENT), 15)
            print("ok - a wrong secret is refused: %s" % m.group(1))
            bad.stop(15)
            check(gw.count(r"component %s link (lost|failed)" % re.escape(COMPONENT)) == 0,
                  "the refused second link disturbed the first one")

            t0 = time.monotonic()
            ej.stop()
            print("ok - ejabberd stopped in %.1f s" % (time.monotonic() - t0))
            gw.wait_log(r"component %s link lost: .*reconnecting in 1 s" % re.escape(COMPONENT), 15)
            gw.wait_log(r"component %s link failed: connect failed: .*reconnecting in 2 s"
                        % re.escape(COMPONENT), 15)
            print("ok - loss and reconnect attempts logged with backoff")
            check(gw.alive(), "psycgate died when ejabberd went away")

            t0 = time.monotonic()
            ej.start()
            print("ok - ejabberd restarted in %.1f s" % (time.monotonic() - t0))
            gw.wait_log(linked, 40, count=2)
            print("ok - relinked after ejabberd came back")
            r = echo(ej, "again")
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
    print("PASS component link with ejabberd" if ok else "FAIL component link with ejabberd")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
