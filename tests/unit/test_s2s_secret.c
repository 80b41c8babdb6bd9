/* test_s2s_secret.c: the persistent dialback secret (gateway/s2s_secret.c):
 * created 0600 (state_dir 0700) once, the same at every later start (keys
 * stay valid across restarts, XEP-0185 §3), refused when readable by
 * others or malformed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "dialback/dialback.h"
#include "gateway/s2s_secret.h"

static char base[256];

static int setup(void **state)
{
    (void)state;
    snprintf(base, sizeof base, "/tmp/psycgate-secret-XXXXXX");
    return mkdtemp(base) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_create_then_reuse(void **state)
{
    (void)state;
    char dir[300], path[400], a[S2S_SECRET_HEX_LEN + 1], b[S2S_SECRET_HEX_LEN + 1], err[256];
    snprintf(dir, sizeof dir, "%s/state", base);
    snprintf(path, sizeof path, "%s/%s", dir, S2S_SECRET_FILE);
    int created = 0;
    assert_int_equal(s2s_secret_load(dir, a, &created, err, sizeof err), 0);
    assert_int_equal(created, 1);
    assert_int_equal(strlen(a), S2S_SECRET_HEX_LEN);
    struct stat st;
    assert_int_equal(stat(dir, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* A restart reads the same secret: a key made before still verifies. */
    char key[DB_KEY_HEX_LEN + 1];
    assert_int_equal(db_key_generate(a, strlen(a), "xmpp.test", "gw.test", "id1", key), 0);
    assert_int_equal(s2s_secret_load(dir, b, &created, err, sizeof err), 0);
    assert_int_equal(created, 0);
    assert_string_equal(a, b);
    assert_int_equal(db_key_verify(b, strlen(b), "xmpp.test", "gw.test", "id1", key), 1);
    /* Two state dirs: two different secrets. */
    char dir2[300];
    snprintf(dir2, sizeof dir2, "%s/state2", base);
    assert_int_equal(s2s_secret_load(dir2, b, &created, err, sizeof err), 0);
    assert_int_equal(created, 1);
    assert_string_not_equal(a, b);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_refusals(void **state)
{
    (void)state;
    char dir[300], path[400], s[S2S_SECRET_HEX_LEN + 1], err[256];
    int created;
    snprintf(dir, sizeof dir, "%s/bad", base);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/%s", dir, S2S_SECRET_FILE);
    const char *good = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
    write_file(path, good, 0644);
    assert_int_equal(s2s_secret_load(dir, s, &created, err, sizeof err), -1);
    assert_non_null(strstr(err, "readable by others"));
    write_file(path, "short\n", 0600);
    assert_int_equal(s2s_secret_load(dir, s, &created, err, sizeof err), -1);
    assert_non_null(strstr(err, "hex digits"));
    write_file(path, good, 0600);
    assert_int_equal(s2s_secret_load(dir, s, &created, err, sizeof err), 0);
    assert_int_equal(created, 0);
    assert_memory_equal(s, good, S2S_SECRET_HEX_LEN);
    assert_int_equal(s2s_secret_load("", s, &created, err, sizeof err), -1);
}

/* --check-config: reports, never creates. */
static void test_check(void **state)
{
    (void)state;
    char dir[300], path[400], err[256];
    snprintf(dir, sizeof dir, "%s/check", base);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(path, sizeof path, "%s/%s", dir, S2S_SECRET_FILE);
    assert_int_equal(s2s_secret_check(dir, err, sizeof err), 0);
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0); /* nothing written */
    write_file(path, "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n", 0640);
    assert_int_equal(s2s_secret_check(dir, err, sizeof err), -1);
    assert_non_null(strstr(err, "readable by others"));
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(s2s_secret_check(dir, err, sizeof err), 1);
    assert_int_equal(s2s_secret_check("", err, sizeof err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_then_reuse),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_check),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
