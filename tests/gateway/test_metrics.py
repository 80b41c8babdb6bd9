#!/usr/bin/python3
"""[metrics] listen: the Prometheus text endpoint (gateway/metrics.h).

Usage: test_metrics.py PATH/TO/psycgate

psycgate on 127.0.0.1 with free PSYC and metrics ports:
  1. GET /metrics answers 200 with Content-Type text/plain; version=0.0.4,
     and every line is a HELP, a TYPE or a sample of the exposition format;
     each metric has one HELP and one TYPE, before its samples, which are
     together; the names are psycgate_*;
  2. a greeted PSYC circuit shows as psycgate_psyc_circuits{direction="in"} 1
     and in the per-circuit byte counters (labelled by peer);
  3. a packet for an unreachable host shows as a queued packet of that
     peer (psycgate_psyc_peer_queued{peer="nowhere.test"} 1) and in
     psycgate_store_queued;
  4. GET /other is a 404; a connection that sends nothing is closed after
     5 s;
  5. SIGTERM: exit 0 (LSan under ASan). Standard library only.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from gwtest import TIMEOUT, Fail, check, free_port, read, recv_until, wait_for

SAMPLE = re.compile(r'^(psycgate_[a-z0-9_]+)(\{[a-z_]+="(?:[^"\\\n]|\\.)*"(?:,[a-z_]+="(?:[^"\\\n]|\\.)*")*\})? '
                    r'(-?[0-9]+)$')


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=TIMEOUT) as r:
        check(r.status == 200, "status %d" % r.status)
        ctype = r.headers["Content-Type"]
        check(ctype.startswith("text/plain; version=0.0.4"), "Content-Type %r" % ctype)
        return r.read().decode()


def parse(text):
    """{(name, labels): value}, checking the format on the way."""
    samples, helped, typed, done, current = {}, set(), set(), set(), None
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            name = line.split()[2]
            check(name.startswith("psycgate_"), "metric %r" % name)
            seen = helped if line.startswith("# HELP") else typed
            check(name not in seen, "%s twice for %s" % (line[:6], name))
            check(name not in done, "%s after another metric's samples" % name)
            seen.add(name)
            if line.startswith("# TYPE"):
                check(line.split()[3] in ("counter", "gauge"), "type in %r" % line)
            continue
        m = SAMPLE.match(line)
        check(m is not None, "not a sample line: %r" % line)
        name = m.group(1)
        check(name in typed, "sample before TYPE: %r" % line)
        if current != name:
            check(name not in done, "samples of %s are not together" % name)
            if current:
                done.add(current)
            current = name
        samples[(name, m.group(2) or "")] = int(m.group(3))
    return samples


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    binary = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="psycgate-metrics-")
    psyc, metrics, dns = free_port(), free_port(), free_port()
    conf = os.path.join(tmp, "gw.conf")
    with open(conf, "w") as f:
        # [dns] points at a closed port: nowhere.test never resolves.
        f.write("[gateway]\nhost = gw.test\nstate_dir = %s\n"
                "[psyc]\nlisten = 127.0.0.1:%d\nlisten_tls = none\ntrusted = 127.0.0.1\n"
                "[tls]\ngenerate_self_signed = no\n[s2s]\nlisten = none\n"
                "[dns]\nserver = 127.0.0.1:%d\ntimeout_ms = 200\ntries = 1\n"
                "[metrics]\nlisten = 127.0.0.1:%d\n" % (os.path.join(tmp, "state"), psyc, dns, metrics))
    log = open(os.path.join(tmp, "gw.log"), "w+")
    proc = subprocess.Popen([binary, "-c", conf], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "metrics at http://127.0.0.1:%d/metrics" % metrics in read(log.name),
                 "the metrics listener", TIMEOUT)
        s = parse(scrape(metrics))
        check(s[("psycgate_psyc_circuits", '{direction="in"}')] == 0, "circuits in before any")
        check(("psycgate_info", '{version="%s",host="gw.test"}' % next(
            k[1].split('"')[1] for k in s if k[0] == "psycgate_info")) in s, "psycgate_info")
        print("ok - GET /metrics: %d samples in the text format, one HELP/TYPE each, grouped" % len(s))

        c = socket.create_connection(("127.0.0.1", psyc), timeout=TIMEOUT)
        c.sendall(b".\n")
        recv_until(c, lambda b: b"_status_circuit" in b, "the greeting")
        c.sendall(b":_source\tpsyc://elsewhere.test/~x\n:_target\tpsyc://nowhere.test/~y\n\n"
                  b"_message_private\nhello\n.\n")
        wait_for(lambda: "nowhere.test" in read(log.name), "the packet for nowhere.test", TIMEOUT)
        time.sleep(0.3)
        s = parse(scrape(metrics))
        check(s[("psycgate_psyc_circuits", '{direction="in"}')] == 1, "circuits in: %r" %
              s[("psycgate_psyc_circuits", '{direction="in"}')])
        ins = [v for (n, l), v in s.items() if n == "psycgate_psyc_circuit_bytes_in" and "127.0.0.1:" in l]
        check(ins and ins[0] > 0, "bytes in of the circuit: %r" % ins)
        print("ok - the greeted circuit: psyc_circuits{direction=\"in\"} 1, %d bytes in" % ins[0])
        q = s.get(("psycgate_psyc_peer_queued", '{peer="nowhere.test"}'))
        check(q == 1, "queued for nowhere.test: %r" % q)
        check(s[("psycgate_store_queued", "")] >= 1, "store_queued %r" % s[("psycgate_store_queued", "")])
        print("ok - the packet for nowhere.test: psyc_peer_queued{peer=\"nowhere.test\"} 1, in the store")

        try:
            urllib.request.urlopen("http://127.0.0.1:%d/other" % metrics, timeout=TIMEOUT)
            raise Fail("GET /other answered 200")
        except urllib.error.HTTPError as e:
            check(e.code == 404, "GET /other: %d" % e.code)
        idle = socket.create_connection(("127.0.0.1", metrics), timeout=10)
        t0 = time.monotonic()
        data = idle.recv(100)
        check(data == b"" and 4 <= time.monotonic() - t0 <= 9, "idle connection: %r after %.1f s" %
              (data, time.monotonic() - t0))
        print("ok - GET /other: 404; a silent connection closed after %.1f s" % (time.monotonic() - t0))
        c.close()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(TIMEOUT)
        check(rc == 0, "exit code %d after SIGTERM" % rc)
        print("ok - SIGTERM: exit 0")
        print("PASS metrics")
        return 0
    except (Fail, KeyError, OSError) as e:
        print("FAIL: %r" % e)
        print(read(log.name)[-3000:])
        return 1
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


if __name__ == "__main__":
    sys.exit(main())
