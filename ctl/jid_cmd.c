/* jid_cmd.c: psycgatectl jid normalize|escape|unescape (xmpp/jid.h).
 *
 * Output is one line on stdout: the result, or "error: REASON" with exit
 * status 1. Wrong usage exits 2. */
#include "ctl/ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmpp/jid.h"

static int jid_usage(void)
{
    fputs("usage: psycgatectl jid normalize JID\n"
          "       psycgatectl jid escape LOCALPART\n"
          "       psycgatectl jid unescape LOCALPART\n",
          stderr);
    return 2;
}

static int jid_normalize(const char *arg)
{
    jid_t j = JID_INIT;
    jid_err_t err = jid_parse_cstr(&j, arg);
    if (err != JID_OK) {
        printf("error: %s\n", jid_strerror(err));
        return 1;
    }
    printf("%s\n", j.full);
    jid_free(&j);
    return 0;
}

static int jid_transform(const char *arg, int escape)
{
    size_t len = strlen(arg);
    size_t size = escape ? JID_ESCAPE_BOUND(len) : JID_UNESCAPE_BOUND(len);
    char *out = malloc(size);
    if (!out) {
        printf("error: %s\n", jid_strerror(JID_ERR_NOMEM));
        return 1;
    }
    jid_err_t err = escape ? jid_escape_local(arg, len, out, size, NULL)
                           : jid_unescape_local(arg, len, out, size, NULL);
    int rc = 0;
    if (err != JID_OK) {
        printf("error: %s\n", jid_strerror(err));
        rc = 1;
    } else {
        printf("%s\n", out);
    }
    free(out);
    return rc;
}

int ctl_jid(int argc, char **argv)
{
    if (argc != 2)
        return jid_usage();
    if (strcmp(argv[0], "normalize") == 0)
        return jid_normalize(argv[1]);
    if (strcmp(argv[0], "escape") == 0)
        return jid_transform(argv[1], 1);
    if (strcmp(argv[0], "unescape") == 0)
        return jid_transform(argv[1], 0);
    return jid_usage();
}
