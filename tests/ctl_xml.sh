#!/bin/sh
# psycgatectl xml check/gen/bench: a generated stream checks clean with one
# line per stanza; restricted XML gives the RFC 6120 condition and exit 1;
# bench prints its ratios.
set -u
CTL=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

"$CTL" xml gen 50 7 > "$tmp/ok.xml" || { echo "FAIL: gen"; fail=1; }
out=$("$CTL" xml check "$tmp/ok.xml") || { echo "FAIL: check exit: $out"; fail=1; }
n=$(printf '%s\n' "$out" | grep -cE '^(message|presence|iq) ')
[ "$n" -eq 50 ] || { echo "FAIL: expected 50 stanza lines, got $n"; fail=1; }
printf '%s\n' "$out" | head -n 1 | grep -q '^open ' || { echo "FAIL: no open line"; fail=1; }

hdr="<?xml version='1.0'?><stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='a.test' version='1.0'>"
check_error() { # name, body, condition
    printf '%s%s' "$hdr" "$2" > "$tmp/$1.xml"
    if out=$("$CTL" xml check "$tmp/$1.xml"); then
        echo "FAIL: $1 accepted"; fail=1
    fi
    printf '%s\n' "$out" | grep -q "^error $3" || { echo "FAIL: $1: $out"; fail=1; }
}
check_error comment '<!-- hi -->' restricted-xml
check_error pi '<?evil x?>' restricted-xml
check_error mismatch '<message><body></message>' not-well-formed
check_error undefined-entity '<message><body>&xxe;</body></message>' not-well-formed
check_error prefix '<x:message/>' invalid-namespace
printf '<!DOCTYPE lol [<!ENTITY a "aaaa">]>%s' "$hdr" > "$tmp/doctype.xml"
if out=$("$CTL" xml check "$tmp/doctype.xml"); then echo "FAIL: doctype accepted"; fail=1; fi
printf '%s\n' "$out" | grep -q '^error restricted-xml' || { echo "FAIL: doctype: $out"; fail=1; }

out=$("$CTL" xml bench -n 1 "$tmp/ok.xml") || { echo "FAIL: bench"; fail=1; }
printf '%s\n' "$out" | grep -qi 'MB/s' || { echo "FAIL: bench output: $out"; fail=1; }

[ $fail -eq 0 ] && echo "ctl xml: all checks passed"
exit $fail
