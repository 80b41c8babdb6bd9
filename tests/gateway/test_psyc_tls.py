#!/usr/bin/python3
"""End-to-end test of PSYC over TLS with real sockets on loopback.

Usage: test_psyc_tls.py PATH/TO/psycgate

Starts psycgate with a temporary config and state directory on free ports
and checks, as a peer would see it (PSYC.md §2.1, §5):
  - first start: a self-signed certificate and key appear in
    <state_dir>/tls/ (key mode 0600), naming [gateway] host, and the log
    says so;
  - listen_tls (9404-style, TLS from the first byte): a TLS client that
    verifies against the generated certificate and checks the host name
    gets the 0.9 greeting after `.\\n`; the session is TLS 1.2 or 1.3 with a
    forward-secret cipher; a TLS 1.1 client is refused;
  - the plain port (4404-style): a ClientHello as the first bytes switches
    the circuit to TLS (the 0x16 autodetection), then `.\\n` gets the
    greeting, and `|\\n` gets `|\\n` (PSYC 1.0 inside TLS);
  - a TLS 1.2 client offering only a cipher without forward secrecy is
    refused;
  - garbage after a TLS record header: the circuit closes with a logged
    handshake failure;
  - the log has one "TLS established" line per session with version,
    cipher and peer certificate; the close line of a TLS circuit says so;
  - a second start loads the same certificate instead of generating one;
  - SIGTERM stops the daemon cleanly (exit 0; under ASan that includes LSan).
Standard library only; every wait is bounded.
"""
import os
import re
import signal
import socket
import ssl
import stat
import subprocess
import sys
import tempfile
import time
import warnings

from gwtest import TIMEOUT, Fail, check, free_port, read, recv_until, wait_for

HOST = "gw.test"


def greeting_done(b):
    return b"\n_status_circuit\n" in b and b.endswith(b"\n.\n")


def client_ctx(cert_path):
    """Verifies the gateway's self-signed certificate and its host name."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_verify_locations(cafile=cert_path)
    ctx.check_hostname = True
    return ctx


def tls_connect(port, ctx, server_hostname=HOST):
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    raw.settimeout(TIMEOUT)
    s = ctx.wrap_socket(raw, server_hostname=server_hostname)
    s.settimeout(TIMEOUT)
    return s


def check_greeting(data, me):
    check(data.startswith(b".\n:_source\tpsyc://%s/\n" % HOST.encode()),
          "greeting starts with %r" % data[:60])
    check(b"\n_notice_circuit_established\n" in data, "no _notice_circuit_established in %r" % data)
    check((b":_target_peer\tpsyc://127.0.0.1:-%d/\n" % me) in data, "_target_peer does not name port %d" % me)


def fs_cipher(name, version):
    # TLS 1.3 suites are all forward-secret; for 1.2 the key exchange must be (EC)DHE.
    return version == "TLSv1.3" or name.startswith("ECDHE-") or name.startswith("DHE-")


def test_tls_port(port, cert_path):
    s = tls_connect(port, client_ctx(cert_path))
    me = s.getsockname()[1]
    version, cipher = s.version(), s.cipher()[0]
    check(version in ("TLSv1.2", "TLSv1.3"), "TLS version %s" % version)
    check(fs_cipher(cipher, version), "cipher without forward secrecy: %s" % cipher)
    s.sendall(b".\n")
    data = recv_until(s, greeting_done, "0.9 greeting over TLS")
    check_greeting(data, me)
    s.sendall(b".\n")
    pong = recv_until(s, lambda b: len(b) >= 2, "pong over TLS")
    check(pong == b".\n", "ping answer %r" % pong)
    s.close()
    print("ok - listen_tls: verified %s %s, 0.9 greeting and pong over TLS" % (version, cipher))
    return me


def test_tls12_fs_only(port, cert_path):
    ctx = client_ctx(cert_path)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    s = tls_connect(port, ctx)
    me = s.getsockname()[1]
    version, cipher = s.version(), s.cipher()[0]
    check(version == "TLSv1.2" and fs_cipher(cipher, version), "TLS 1.2 session %s %s" % (version, cipher))
    s.close()
    print("ok - TLS 1.2: forward-secret %s" % cipher)

    # Only RSA key exchange offered: no forward secrecy, must be refused.
    ctx = client_ctx(cert_path)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers("AES128-GCM-SHA256:AES256-GCM-SHA384:AES128-SHA")
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    raw.settimeout(TIMEOUT)
    me2 = raw.getsockname()[1]
    try:
        ctx.wrap_socket(raw, server_hostname=HOST)
        raise Fail("a TLS 1.2 session without forward secrecy was accepted")
    except (ssl.SSLError, ConnectionResetError):
        pass
    finally:
        raw.close()
    print("ok - TLS 1.2 without forward secrecy: refused")
    return [me, me2]


def test_old_tls_refused(port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is the point here
    try:
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        print("ok - TLS 1.1 client: skipped (this Python cannot offer TLS 1.1)")
        return []
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    raw.settimeout(TIMEOUT)
    me = raw.getsockname()[1]
    try:
        ctx.wrap_socket(raw, server_hostname=HOST)
        raise Fail("a TLS 1.1 session was accepted")
    except (ssl.SSLError, ConnectionResetError):
        pass
    finally:
        raw.close()
    print("ok - TLS 1.1 client: refused")
    return [me]


def test_autodetect(port, cert_path, key_path):
    """TLS from the first byte on the plain port: 0x16 switches the circuit."""
    s = tls_connect(port, client_ctx(cert_path))
    me = s.getsockname()[1]
    s.sendall(b".\n")
    data = recv_until(s, greeting_done, "0.9 greeting over autodetected TLS")
    check_greeting(data, me)
    version = s.version()
    s.close()
    print("ok - plain port, ClientHello first: TLS (%s), then the 0.9 greeting" % version)

    # Without verification, PSYC 1.0 inside TLS; this client presents a
    # certificate (the gateway's own, which no CA store trusts).
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(cert_path, key_path)
    s = tls_connect(port, ctx, server_hostname=None)
    me2 = s.getsockname()[1]
    s.sendall(b"|\n")
    got = recv_until(s, lambda b: len(b) >= 2, "1.0 greeting over TLS")
    check(got == b"|\n", "1.0 answer over TLS %r" % got)
    s.close()
    print("ok - plain port, ClientHello first, client certificate: PSYC 1.0 '|' answered inside TLS")
    return [me, me2]


def test_garbage(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    s.settimeout(TIMEOUT)
    me = s.getsockname()[1]
    s.sendall(b"\x16\x03\x01\x00\x05hello")
    data = bytearray()
    end = time.monotonic() + TIMEOUT
    while True:
        if time.monotonic() > end:
            raise Fail("no EOF after TLS garbage; got %r" % bytes(data))
        try:
            chunk = s.recv(4096)
        except ConnectionResetError:
            break
        if not chunk:
            break
        data += chunk
    s.close()
    # Nothing but (at most) a TLS alert record: never PSYC in plaintext.
    check(not data or data[0] == 0x15, "reply to TLS garbage %r" % bytes(data))
    print("ok - TLS garbage on the plain port: %s, then EOF" % ("alert" if data else "no reply"))
    return me


def start(binary, conf, log_path):
    logf = open(log_path, "a")
    proc = subprocess.Popen([binary, "-c", conf], stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
    logf.close()
    return proc


def stop(proc, what):
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        raise Fail("%s did not stop within 15 s of SIGTERM" % what)
    check(rc == 0, "%s exited with %d after SIGTERM" % (what, rc))


def main():
    if len(sys.argv) != 2:
        print("usage: test_psyc_tls.py PSYCGATE", file=sys.stderr)
        return 2
    binary = sys.argv[1]
    plain, tls = free_port(), free_port()
    while tls == plain:
        tls = free_port()
    ok = False
    with tempfile.TemporaryDirectory(prefix="psycgate-tls-e2e-") as tmp:
        state = os.path.join(tmp, "var")
        conf = os.path.join(tmp, "psycgate.conf")
        log_path = os.path.join(tmp, "stderr.log")
        cert_path = os.path.join(state, "tls", "psycgate.crt")
        key_path = os.path.join(state, "tls", "psycgate.key")
        with open(conf, "w") as f:
            f.write("[gateway]\nhost = %s\nstate_dir = %s\nlog_level = debug\n"
                    "[psyc]\nlisten = 127.0.0.1:%d\nlisten_tls = 127.0.0.1:%d\nidle_timeout = 30\n"
                    "[tls]\ngenerate_self_signed = yes\n[s2s]\nlisten = none\n" % (HOST, state, plain, tls))
        proc = start(binary, conf, log_path)
        try:
            wait_for(lambda: "listening on 127.0.0.1:%d" % tls in read(log_path)
                     or proc.poll() is not None, "the TLS listener")
            check(proc.poll() is None, "psycgate exited at startup: %s" % read(log_path))
            log = read(log_path)
            check(os.path.isfile(cert_path) and os.path.isfile(key_path), "no certificate files in %s" % state)
            mode = stat.S_IMODE(os.stat(key_path).st_mode)
            check(mode == 0o600, "key file mode %o" % mode)
            check("generated self-signed certificate %s" % cert_path in log, "generation not logged")
            check("subject CN=%s" % HOST in log, "subject not logged")
            check("listening on 127.0.0.1:%d (PSYC over TLS" % tls in log, "TLS listener line")
            check("listening on 127.0.0.1:%d (PSYC 0.9 and 1.0, TLS autodetected)" % plain in log,
                  "plain listener line")
            print("ok - first start: self-signed certificate and key (mode 600) in the state directory")

            tls_ports = [test_tls_port(tls, cert_path)]
            tls_ports += test_tls12_fs_only(tls, cert_path)
            refused = test_old_tls_refused(tls)
            tls_ports += test_autodetect(plain, cert_path, key_path)
            garbage = test_garbage(plain)

            wait_for(lambda: all(re.search(r"127\.0\.0\.1:%d circuit closed" % p, read(log_path))
                                 for p in tls_ports + refused + [garbage]), "close lines")
            log = read(log_path)
            lines = log.splitlines()
            for p in tls_ports[:1] + tls_ports[-2:]:
                peer = "127.0.0.1:%d " % p
                est = [l for l in lines if peer + "TLS established: TLSv1." in l]
                check(len(est) == 1, "port %d: %d 'TLS established' lines" % (p, len(est)))
                if p == tls_ports[-1]:
                    want = "peer certificate CN=%s (not verified: self-signed certificate" % HOST
                else:
                    want = "no peer certificate"
                check(want in est[0], "peer certificate not reported as %r: %s" % (want, est[0]))
                closes = [l for l in lines if peer + "circuit closed" in l]
                check(len(closes) == 1 and "over TLS" in closes[0], "close line for %d: %r" % (p, closes))
            fs = [l for l in lines if "127.0.0.1:%d " % tls_ports[2] in l and "circuit closed" in l]
            check(fs and "TLS handshake failed" in fs[0], "no-FS refusal not logged: %r" % fs)
            g = [l for l in lines if "127.0.0.1:%d circuit closed" % garbage in l]
            check(g and "TLS handshake failed" in g[0], "garbage close line %r" % g)
            check("TLS not yet supported" not in log, "old refusal still logged")
            print("ok - log: TLS established (version, cipher, peer certificate) and close reasons per circuit")

            stop(proc, "psycgate")
            print("ok - SIGTERM: clean stop, exit 0")

            # Second start: the same certificate is loaded, not regenerated.
            before = open(cert_path, "rb").read()
            with open(log_path, "w"):
                pass
            proc = start(binary, conf, log_path)
            wait_for(lambda: "listening on 127.0.0.1:%d" % tls in read(log_path)
                     or proc.poll() is not None, "the TLS listener (second start)")
            check(proc.poll() is None, "psycgate exited at second start: %s" % read(log_path))
            check("loaded certificate %s" % cert_path in read(log_path), "second start did not load")
            check(open(cert_path, "rb").read() == before, "certificate changed on the second start")
            test_tls_port(tls, cert_path)
            stop(proc, "psycgate (second start)")
            print("ok - second start: the generated certificate is reused")
            ok = True
        except Fail as e:
            print("FAIL - %s" % e)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            if not ok:
                print("--- psycgate log ---")
                print(read(log_path))
        print("e2e.psyc_tls: %s" % ("PASS" if ok else "FAIL"))
        return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
