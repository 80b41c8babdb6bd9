/* keys.c: XEP-0185 §2 dialback key generation and verification. */
#include "dialback/dialback.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <string.h>

static void to_hex(const unsigned char *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

int db_key_generate(const char *secret, size_t secret_len, const char *receiving, const char *originating,
                    const char *stream_id, char out[DB_KEY_HEX_LEN + 1])
{
    unsigned char digest[32];
    unsigned int dlen = 0;
    char secret_hex[65];
    if (!EVP_Digest(secret, secret_len, digest, &dlen, EVP_sha256(), NULL) || dlen != 32)
        return -1;
    to_hex(digest, 32, secret_hex);

    /* XEP-0185 §2: { Receiving Server, ' ', Originating Server, ' ', Stream ID } */
    size_t lr = strlen(receiving), lo = strlen(originating), li = strlen(stream_id);
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    int ok = 0;
    if (ctx) {
        char digest_name[] = "SHA256";
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest_name, 0), OSSL_PARAM_construct_end()};
        size_t outl = 0;
        ok = EVP_MAC_init(ctx, (const unsigned char *)secret_hex, 64, params) &&
             EVP_MAC_update(ctx, (const unsigned char *)receiving, lr) &&
             EVP_MAC_update(ctx, (const unsigned char *)" ", 1) &&
             EVP_MAC_update(ctx, (const unsigned char *)originating, lo) &&
             EVP_MAC_update(ctx, (const unsigned char *)" ", 1) &&
             EVP_MAC_update(ctx, (const unsigned char *)stream_id, li) &&
             EVP_MAC_final(ctx, digest, &outl, sizeof digest) && outl == 32;
    }
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    OPENSSL_cleanse(secret_hex, sizeof secret_hex);
    if (!ok)
        return -1;
    to_hex(digest, 32, out);
    return 0;
}

int db_key_verify(const char *secret, size_t secret_len, const char *receiving, const char *originating,
                  const char *stream_id, const char *key)
{
    char expect[DB_KEY_HEX_LEN + 1];
    if (!key || strlen(key) != DB_KEY_HEX_LEN)
        return 0;
    if (db_key_generate(secret, secret_len, receiving, originating, stream_id, expect) != 0)
        return 0;
    return CRYPTO_memcmp(expect, key, DB_KEY_HEX_LEN) == 0;
}
