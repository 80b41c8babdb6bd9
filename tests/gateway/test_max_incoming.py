#!/usr/bin/python3
"""[gateway] max_incoming: a face with that many incoming connections open
accepts the next one and closes it at once, with a log line; the open ones
are not disturbed and a new one is served again once one closes.

Usage: test_max_incoming.py PATH/TO/psycgate

psycgate on 127.0.0.1 with free PSYC and S2S ports and max_incoming = 2.
For each face: two connections are opened (PSYC: greeted), a third gets EOF
and the log names it; after one of the two closes, a new one is served.
SIGTERM ends the daemon with exit 0 (LSan under ASan). Standard library only.
"""
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

from gwtest import TIMEOUT, Fail, check, free_port, read, recv_until, wait_for


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    s.settimeout(TIMEOUT)
    return s


def eof_soon(s, what):
    s.settimeout(5)
    try:
        data = s.recv(4096)
    except (ConnectionResetError, socket.timeout) as e:
        if isinstance(e, socket.timeout):
            raise Fail("%s: still open after 5 s" % what)
        return
    check(data == b"", "%s: got %r instead of EOF" % (what, data))


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    binary = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="psycgate-max-")
    psyc, s2s = free_port(), free_port()
    conf = os.path.join(tmp, "gw.conf")
    with open(conf, "w") as f:
        f.write("[gateway]\nhost = gw.test\nstate_dir = %s\nmax_incoming = 2\n"
                "[psyc]\nlisten = 127.0.0.1:%d\nlisten_tls = none\n"
                "[tls]\ngenerate_self_signed = no\n"
                "[s2s]\nlisten = 127.0.0.1:%d\ntls = none\n" % (os.path.join(tmp, "state"), psyc, s2s))
    log = open(os.path.join(tmp, "gw.log"), "w+")
    proc = subprocess.Popen([binary, "-c", conf], stdout=log, stderr=subprocess.STDOUT)
    socks = []
    try:
        wait_for(lambda: "listening for XMPP S2S" in read(log.name), "the gateway to listen", TIMEOUT)
        # PSYC: two greeted circuits, the third is refused
        for _ in range(2):
            s = connect(psyc)
            s.sendall(b".\n")
            recv_until(s, lambda b: b"_status_circuit" in b, "the greeting")
            socks.append(s)
        third = connect(psyc)
        eof_soon(third, "the third PSYC connection")
        wait_for(lambda: "refused a PSYC connection from 127.0.0.1:" in read(log.name),
                 "the PSYC refusal in the log", TIMEOUT)
        print("ok - PSYC: the third connection was closed at once and logged")
        socks.pop().close()
        time.sleep(0.5)
        again = connect(psyc)
        again.sendall(b".\n")
        recv_until(again, lambda b: b"_status_circuit" in b, "the greeting after one closed")
        socks.append(again)
        print("ok - PSYC: after one closed, a new circuit is served")
        # S2S: two streams (unauthenticated, still counted), the third refused
        for _ in range(2):
            socks.append(connect(s2s))
        time.sleep(0.3)
        eof_soon(connect(s2s), "the third S2S connection")
        wait_for(lambda: "refused an S2S connection from 127.0.0.1:" in read(log.name),
                 "the S2S refusal in the log", TIMEOUT)
        print("ok - S2S: the third connection was closed at once and logged")
        for s in socks:
            s.close()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(TIMEOUT)
        check(rc == 0, "exit code %d after SIGTERM" % rc)
        print("ok - SIGTERM: exit 0")
        print("PASS max_incoming")
        return 0
    except Fail as e:
        print("FAIL: %s" % e)
        print(read(log.name)[-3000:])
        return 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    sys.exit(main())
