/* test_subs.c: subscription states (routing/subs.h) against RFC 6121
 * Appendix A, and that they use the store's bits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "gateway/store.h"
#include "routing/subs.h"

static void test_flows(void **state)
{
    (void)state;
    char b[64];
    /* The store keeps exactly these bits. */
    assert_int_equal(SUBS_TO, STORE_SUB_TO);
    assert_int_equal(SUBS_FROM, STORE_SUB_FROM);
    assert_int_equal(SUBS_PENDING_OUT, STORE_SUB_PENDING_OUT);
    assert_int_equal(SUBS_PENDING_IN, STORE_SUB_PENDING_IN);
    /* alice (local) asks bob, bob approves, bob asks back, alice approves. */
    unsigned s = 0;
    s = subs_next(s, "subscribe", 1);
    assert_string_equal(subs_name(s, b, sizeof b), "none +pending-out");
    s = subs_next(s, "subscribed", 0);
    assert_string_equal(subs_name(s, b, sizeof b), "to");
    s = subs_next(s, "subscribe", 0);
    assert_string_equal(subs_name(s, b, sizeof b), "to +pending-in");
    s = subs_next(s, "subscribed", 1);
    assert_string_equal(subs_name(s, b, sizeof b), "both");
    /* Repeats change nothing. */
    assert_int_equal(subs_next(s, "subscribe", 1), s);
    assert_int_equal(subs_next(s, "subscribe", 0), s);
    /* An unsolicited subscribed is ignored (A.3.2). */
    assert_int_equal(subs_next(0, "subscribed", 0), 0);
    assert_int_equal(subs_next(0, "subscribed", 1), 0);
    /* Ending it, both ways. */
    s = subs_next(s, "unsubscribed", 1); /* alice cancels bob's subscription */
    assert_string_equal(subs_name(s, b, sizeof b), "to");
    s = subs_next(s, "unsubscribe", 1);  /* and drops her own */
    assert_string_equal(subs_name(s, b, sizeof b), "none");
    s = subs_next(SUBS_TO | SUBS_FROM, "unsubscribed", 0);
    assert_string_equal(subs_name(s, b, sizeof b), "from");
    s = subs_next(s, "unsubscribe", 0);
    assert_int_equal(s, 0);
    assert_int_equal(subs_next(SUBS_PENDING_IN, "unsubscribe", 0), 0);
    assert_int_equal(subs_next(5, "probe", 0), 5);
    assert_int_equal(subs_next(5, NULL, 0), 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_flows)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
