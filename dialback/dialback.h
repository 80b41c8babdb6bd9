/*
 * dialback.h: Server Dialback keys (XEP-0185) for XEP-0220.
 *
 *   key = hex(HMAC-SHA256(hex(SHA256(secret)), receiving " " originating " " stream-id))
 *
 * The hex form of SHA256(secret) is the HMAC key, as Prosody and
 * ejabberd compute it, so keys interoperate with their verifiers.
 * No I/O: the secret is given by the caller (the gateway keeps it in the
 * state directory).
 */
#ifndef DIALBACK_DIALBACK_H
#define DIALBACK_DIALBACK_H

#include <stddef.h>

#define DB_KEY_HEX_LEN 64

/* Writes the 64 hex digits and a NUL into out. 0, or -1 on a crypto failure. */
int db_key_generate(const char *secret, size_t secret_len, const char *receiving, const char *originating,
                    const char *stream_id, char out[DB_KEY_HEX_LEN + 1]);

/* 1 if `key` is the key for these inputs (constant-time compare), else 0. */
int db_key_verify(const char *secret, size_t secret_len, const char *receiving, const char *originating,
                  const char *stream_id, const char *key);

#endif
