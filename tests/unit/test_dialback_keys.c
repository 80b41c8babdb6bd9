/* test_dialback_keys.c: XEP-0185 keys against an independent computation
 * (Python's hmac/hashlib: hmac(sha256(secret).hexdigest(), "recv orig id", sha256)). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "dialback/dialback.h"

static void test_known_keys(void **state)
{
    (void)state;
    char key[DB_KEY_HEX_LEN + 1];
    assert_int_equal(db_key_generate("s3cr3tf0rd14lb4ck", 17, "example.net", "example.com", "D60000229F", key), 0);
    assert_string_equal(key, "008c689ff366b50c63d69a3e2d2c0e0e1f8404b0118eb688a0102c87cb691bdc");
    /* Prosody sends an empty stream id on streams it initiates (harness notes §2) */
    assert_int_equal(db_key_generate("s3cr3t-dialback", 15, "gw.test", "xmpp.test", "", key), 0);
    assert_string_equal(key, "602e0ba2e9f2ac096aeead089bc36c27b369f0c89ab7c04f5b6726a69c8e27f3");
}

static void test_verify(void **state)
{
    (void)state;
    char key[DB_KEY_HEX_LEN + 1];
    assert_int_equal(db_key_generate("secret", 6, "a.example", "b.example", "id1", key), 0);
    assert_true(db_key_verify("secret", 6, "a.example", "b.example", "id1", key));
    /* every input matters, including the order of the two domains */
    assert_false(db_key_verify("secreT", 6, "a.example", "b.example", "id1", key));
    assert_false(db_key_verify("secret", 6, "b.example", "a.example", "id1", key));
    assert_false(db_key_verify("secret", 6, "a.example", "b.example", "id2", key));
    key[10] ^= 1;
    assert_false(db_key_verify("secret", 6, "a.example", "b.example", "id1", key));
    assert_false(db_key_verify("secret", 6, "a.example", "b.example", "id1", "short"));
    assert_false(db_key_verify("secret", 6, "a.example", "b.example", "id1", NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_keys),
        cmocka_unit_test(test_verify),
    };
    return cmocka_run_group_tests_name("dialback_keys", tests, NULL, NULL);
}
