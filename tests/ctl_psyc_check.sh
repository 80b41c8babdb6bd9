#!/bin/sh
# psycgatectl psyc check/dump/bench over the vectors: every valid file is
# "ok" (parsed, re-rendered byte for byte), every invalid one an "error"
# with a byte offset, and the exit status says which.
set -u
CTL=$1
V=$2
fail=0

expect_ok() {
    out=$("$CTL" psyc check "$@") || { echo "FAIL (exit): $out"; fail=1; return; }
    printf "%s\n" "$out" | grep -qv '^ok ' && { echo "FAIL: $out"; fail=1; }
}
expect_error() {
    for f in "$@"; do
        if out=$("$CTL" psyc check "$f"); then
            echo "FAIL (accepted invalid): $out"; fail=1
        fi
        printf "%s\n" "$out" | grep -Eq "^error $f: byte [0-9]+: .+" || { echo "FAIL (format): $out"; fail=1; }
    done
}

valid10=$(ls "$V"/libpsyc-test-packets/[0-9]*.psyc "$V"/crafted/c*.psyc)
invalid10=$(ls "$V"/libpsyc-test-packets/err-*.psyc "$V"/crafted/e*.psyc)
valid09=$(ls "$V"/old-syntax-0.9/o0[1-7]*.psyc09 "$V"/psyced-0.9-captures/*/*.psyc09)

# shellcheck disable=SC2086
expect_ok $valid10
# shellcheck disable=SC2086
expect_ok --routing-only $valid10
# shellcheck disable=SC2086
expect_ok $valid09
# shellcheck disable=SC2086
expect_error $invalid10 "$V"/old-syntax-0.9/o08-INVALID-body-with-lone-dot-line.psyc09

# several files at once: one bad file makes the exit status non-zero
if "$CTL" psyc check "$V"/crafted/c01-empty-packet-greeting.psyc "$V"/crafted/e01-entity-modifier-without-tab.psyc >/dev/null; then
    echo "FAIL: mixed check exited 0"; fail=1
fi

# dump: one line per event, ends with the packet count
out=$("$CTL" psyc dump "$V"/crafted/c11-two-packets-one-buffer.psyc)
printf "%s\n" "$out" | grep -q '^BODY _message_public 6:hi all$' || { echo "FAIL dump: $out"; fail=1; }
printf "%s\n" "$out" | tail -n 1 | grep -q 'packets=2' || { echo "FAIL dump count: $out"; fail=1; }
out=$("$CTL" psyc dump "$V"/old-syntax-0.9/o04-list-and-continuation.psyc09)
printf "%s\n" "$out" | grep -q 'ENTITY : _description 17:line one\\nline two' || { echo "FAIL dump 0.9: $out"; fail=1; }

# bench runs and reports
out=$("$CTL" psyc bench -n 100 "$V"/crafted/c04-message-private.psyc) || { echo "FAIL bench"; fail=1; }
printf "%s\n" "$out" | grep -q 'ns/packet' || { echo "FAIL bench output: $out"; fail=1; }
out=$("$CTL" psyc bench -n 100 --routing-only "$V"/crafted/c04-message-private.psyc) || { echo "FAIL bench -r"; fail=1; }
printf "%s\n" "$out" | grep -q 'routing-only' || { echo "FAIL bench -r output: $out"; fail=1; }

[ $fail -eq 0 ] && echo "ctl psyc: all checks passed"
exit $fail
