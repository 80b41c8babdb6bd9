/*
 * s2s_secret.h: the dialback secret of the S2S face (XEP-0185 §3: "a
 * secret known only to the Authoritative Server").
 *
 * Keys we sent must still verify after a restart (a peer may ask us about
 * a key minutes later, XEP-0220 §2.1.2), so the secret is not made per
 * process: it lives in <state_dir>/dialback.secret, 32 random bytes as 64
 * hex digits, created with mode 0600 at the first start (state_dir is
 * created with mode 0700 when missing) and read at every later start.
 */
#ifndef GATEWAY_S2S_SECRET_H
#define GATEWAY_S2S_SECRET_H

#include <stddef.h>

#define S2S_SECRET_HEX_LEN 64
#define S2S_SECRET_FILE "dialback.secret"

/* Reads (or, when the file does not exist, creates) the secret file in
 * state_dir. 0 and out filled (64 hex digits + NUL), *created set to 1
 * when it was made now; -1 with a reason in err (unreadable file, wrong
 * content, permissions too open, cannot create). */
int s2s_secret_load(const char *state_dir, char out[S2S_SECRET_HEX_LEN + 1], int *created,
                    char *err, size_t errsz);
/* For --check-config, writing nothing: 1 when the secret file exists and
 * is usable, 0 when it does not exist yet (it is made at the first
 * start), -1 with a reason in err (permissions, content). */
int s2s_secret_check(const char *state_dir, char *err, size_t errsz);

#endif
