/* translate_err.c: stanza error conditions (RFC 6120 §8.3.3) <-> PSYC
 * _error_* / _failure_* methods (PSYC.md §4.4). psyced's names where it
 * has one (_error_unknown_name_user, _error_illegal_uniform,
 * _error_unsupported_method, _failure_unavailable_service,
 * _failure_unsuccessful_delivery); the rest follow PSYC's convention: an
 * _error is the requester's fault, a _failure is ours or the network's. */
#include <string.h>

#include "routing/translate.h"

typedef struct translate_err_row {
    const char *cond;
    const char *type; /* RFC 6120 §8.3.2 */
    const char *method;
} translate_err_row;

static const translate_err_row translate_err_table[] = {
    {"bad-request", "modify", "_error_invalid_request"},
    {"conflict", "cancel", "_error_duplicate"},
    {"feature-not-implemented", "cancel", "_error_unsupported_method"},
    {"forbidden", "auth", "_error_forbidden"},
    {"gone", "cancel", "_failure_gone"},
    {"internal-server-error", "cancel", "_failure_internal"},
    {"item-not-found", "cancel", "_error_unknown_name"},
    {"jid-malformed", "modify", "_error_illegal_uniform"},
    {"not-acceptable", "modify", "_error_invalid"},
    {"not-allowed", "cancel", "_error_rejected"},
    {"not-authorized", "auth", "_error_unauthorized"},
    {"policy-violation", "modify", "_error_rejected_policy"},
    {"recipient-unavailable", "wait", "_failure_unsuccessful_delivery"},
    {"redirect", "modify", "_failure_redirect"},
    {"registration-required", "auth", "_error_required_registration"},
    {"remote-server-not-found", "cancel", "_failure_unsuccessful_delivery_resolve"},
    {"remote-server-timeout", "wait", "_failure_unsuccessful_delivery_timeout"},
    {"resource-constraint", "wait", "_failure_exceeded_resources"},
    {"service-unavailable", "cancel", "_failure_unavailable_service"},
    {"subscription-required", "auth", "_error_required_friendship"},
    {"unexpected-request", "wait", "_error_unexpected"},
    /* Catch-alls for the reverse direction: the families themselves. */
    {"undefined-condition", "modify", "_error"},
    {"undefined-condition", "cancel", "_failure"},
};

#define TRANSLATE_ERR_ROWS (sizeof translate_err_table / sizeof translate_err_table[0])

const char *translate_error_method(const char *cond, const char *type)
{
    if (cond) {
        for (size_t i = 0; i < TRANSLATE_ERR_ROWS; i++)
            if (strcmp(translate_err_table[i].cond, cond) == 0 &&
                strcmp(cond, "undefined-condition") != 0)
                return translate_err_table[i].method;
    }
    /* Unknown or undefined: the family by the error type (modify and auth
     * are the sender's to fix, cancel and wait are not). */
    return type && (strcmp(type, "modify") == 0 || strcmp(type, "auth") == 0) ? "_error" : "_failure";
}

const char *translate_error_condition(psyc_str method, const char **type)
{
    const translate_err_row *best = NULL;
    for (size_t i = 0; i < TRANSLATE_ERR_ROWS; i++) {
        const translate_err_row *r = &translate_err_table[i];
        if (psyc_inherits(method, psyc_str_c(r->method)) &&
            (!best || strlen(r->method) > strlen(best->method)))
            best = r;
    }
    if (!best) /* neither family: a _warning or _info is no error we could name */
        best = &translate_err_table[TRANSLATE_ERR_ROWS - 1];
    if (type)
        *type = best->type;
    return best->cond;
}
