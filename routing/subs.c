/* subs.c: subscription states (see subs.h; RFC 6121 Appendix A). */
#include "routing/subs.h"

#include <stdio.h>
#include <string.h>

unsigned subs_next(unsigned s, const char *type, int outbound)
{
    if (!type)
        return s;
    if (outbound) {
        /* A.2: what the local user sends. */
        if (strcmp(type, "subscribe") == 0)
            return s & SUBS_TO ? s : s | SUBS_PENDING_OUT;
        if (strcmp(type, "subscribed") == 0)   /* approval; without a request it pre-approves nothing here */
            return s & SUBS_PENDING_IN ? (s & ~(unsigned)SUBS_PENDING_IN) | SUBS_FROM : s;
        if (strcmp(type, "unsubscribe") == 0)
            return s & ~(unsigned)(SUBS_TO | SUBS_PENDING_OUT);
        if (strcmp(type, "unsubscribed") == 0)
            return s & ~(unsigned)(SUBS_FROM | SUBS_PENDING_IN);
        return s;
    }
    /* A.3: what the local user receives. */
    if (strcmp(type, "subscribe") == 0)
        return s & SUBS_FROM ? s : s | SUBS_PENDING_IN;
    if (strcmp(type, "subscribed") == 0)       /* ignored unless we asked (A.3.2) */
        return s & SUBS_PENDING_OUT ? (s & ~(unsigned)SUBS_PENDING_OUT) | SUBS_TO : s;
    if (strcmp(type, "unsubscribe") == 0)
        return s & ~(unsigned)(SUBS_FROM | SUBS_PENDING_IN);
    if (strcmp(type, "unsubscribed") == 0)
        return s & ~(unsigned)(SUBS_TO | SUBS_PENDING_OUT);
    return s;
}

const char *subs_name(unsigned s, char *buf, unsigned size)
{
    const char *base = (s & SUBS_TO) && (s & SUBS_FROM) ? "both"
                       : s & SUBS_TO                    ? "to"
                       : s & SUBS_FROM                  ? "from"
                                                        : "none";
    snprintf(buf, size, "%s%s%s", base, s & SUBS_PENDING_OUT ? " +pending-out" : "",
             s & SUBS_PENDING_IN ? " +pending-in" : "");
    return buf;
}
