#!/bin/sh
# psycgatectl jid normalize|escape|unescape (xmpp/jid.h): normalised output,
# "error: REASON" with exit 1, XEP-0106 examples both ways. Values with
# backslashes go through printf '%s\n' (dash's echo interprets them).
set -u
CTL=$1
fail=0

# expect SUBCOMMAND ARG EXPECTED-OUTPUT EXPECTED-STATUS
expect() {
    got=$("$CTL" jid "$1" "$2")
    rc=$?
    if [ "$got" != "$3" ] || [ "$rc" != "$4" ]; then
        printf 'FAIL: jid %s [%s]\n  want (%s) %s\n  got  (%s) %s\n' "$1" "$2" "$4" "$3" "$rc" "$got"
        fail=1
    fi
}

# normalize
expect normalize 'Alice@Example.COM/Home' 'alice@example.com/Home' 0
expect normalize 'example.com.' 'example.com' 0
expect normalize 'STRASSE@example.com' 'strasse@example.com' 0
expect normalize 'Straße@example.com' 'strasse@example.com' 0
expect normalize 'a@[0:0:0:0:0:0:0:1]/r/s@t' 'a@[::1]/r/s@t' 0
expect normalize 'user@bücher.example' 'user@bücher.example' 0
expect normalize '@example.com' 'error: empty localpart before '"'"'@'"'"'' 1
expect normalize 'a b@example.com' 'error: localpart contains a character prohibited by nodeprep' 1
expect normalize 'a@example.com/' 'error: empty resourcepart after '"'"'/'"'"'' 1
expect normalize 'a@-bad.example' 'error: domainpart label is not letters, digits and inner hyphens' 1
expect normalize '' 'error: empty JID' 1

# escape / unescape: XEP-0106 §5.1 examples
expect escape 'space cadet' "$(printf '%s' 'space\20cadet')" 0
expect escape 'call me "ishmael"' "$(printf '%s' 'call\20me\20\22ishmael\22')" 0
expect escape "d'artagnan" "$(printf '%s' 'd\27artagnan')" 0
expect escape 'user@host' "$(printf '%s' 'user\40host')" 0
expect escape "$(printf '%s' 'c:\5commas')" "$(printf '%s' 'c\3a\5c5commas')" 0
expect unescape "$(printf '%s' 'c\3a\5cnet')" "$(printf '%s' 'c:\net')" 0
expect unescape "$(printf '%s' '\3cfoo\3e')" '<foo>' 0
expect unescape "$(printf '%s' 'foo\bar')" "$(printf '%s' 'foo\bar')" 0
expect escape ' lead' 'error: localpart cannot begin or end with a space (XEP-0106 \20)' 1

# escaped localparts are valid JIDs
esc=$("$CTL" jid escape "here's_a_wild_&_/cr%zy/_address") || fail=1
expect normalize "$esc@example.com" "$(printf '%s' 'here\27s_a_wild_\26_\2fcr%zy\2f_address@example.com')" 0
expect unescape "$esc" "here's_a_wild_&_/cr%zy/_address" 0

# usage errors exit 2
"$CTL" jid >/dev/null 2>&1; [ $? -eq 2 ] || { echo "FAIL: bare 'jid' should exit 2"; fail=1; }
"$CTL" jid frobnicate x >/dev/null 2>&1; [ $? -eq 2 ] || { echo "FAIL: unknown subcommand should exit 2"; fail=1; }

[ $fail -eq 0 ] && echo "ctl jid: all checks passed"
exit $fail
