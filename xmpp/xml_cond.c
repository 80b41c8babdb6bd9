/*
 * xml_cond.c: RFC 6120 §4.9.3 stream error conditions: names, and reading
 * a received <stream:error/> (RFC 6120 §4.9.2: one defined condition in
 * the xmpp-streams namespace, an optional <text/>, an optional
 * application-specific condition).
 */
#include "xmpp/xml.h"

#include <string.h>

static const char *const cond_names[XML_COND_COUNT] = {
    [XML_COND_NONE] = "",
    [XML_COND_BAD_FORMAT] = "bad-format",
    [XML_COND_BAD_NAMESPACE_PREFIX] = "bad-namespace-prefix",
    [XML_COND_CONFLICT] = "conflict",
    [XML_COND_CONNECTION_TIMEOUT] = "connection-timeout",
    [XML_COND_HOST_GONE] = "host-gone",
    [XML_COND_HOST_UNKNOWN] = "host-unknown",
    [XML_COND_IMPROPER_ADDRESSING] = "improper-addressing",
    [XML_COND_INTERNAL_SERVER_ERROR] = "internal-server-error",
    [XML_COND_INVALID_FROM] = "invalid-from",
    [XML_COND_INVALID_NAMESPACE] = "invalid-namespace",
    [XML_COND_INVALID_XML] = "invalid-xml",
    [XML_COND_NOT_AUTHORIZED] = "not-authorized",
    [XML_COND_NOT_WELL_FORMED] = "not-well-formed",
    [XML_COND_POLICY_VIOLATION] = "policy-violation",
    [XML_COND_REMOTE_CONNECTION_FAILED] = "remote-connection-failed",
    [XML_COND_RESET] = "reset",
    [XML_COND_RESOURCE_CONSTRAINT] = "resource-constraint",
    [XML_COND_RESTRICTED_XML] = "restricted-xml",
    [XML_COND_SEE_OTHER_HOST] = "see-other-host",
    [XML_COND_SYSTEM_SHUTDOWN] = "system-shutdown",
    [XML_COND_UNDEFINED_CONDITION] = "undefined-condition",
    [XML_COND_UNSUPPORTED_ENCODING] = "unsupported-encoding",
    [XML_COND_UNSUPPORTED_FEATURE] = "unsupported-feature",
    [XML_COND_UNSUPPORTED_STANZA_TYPE] = "unsupported-stanza-type",
    [XML_COND_UNSUPPORTED_VERSION] = "unsupported-version",
};

const char *xml_cond_name(xml_cond c)
{
    if ((unsigned)c >= XML_COND_COUNT)
        return "undefined-condition";
    return cond_names[c];
}

xml_cond xml_cond_from_name(const char *name)
{
    if (!name || !*name)
        return XML_COND_NONE;
    for (int c = 1; c < XML_COND_COUNT; c++)
        if (strcmp(cond_names[c], name) == 0)
            return (xml_cond)c;
    /* RFC 3920 spelled not-well-formed "xml-not-well-formed" (RFC 6120
     * §4.9.3.13, interoperability note). */
    if (strcmp(name, "xml-not-well-formed") == 0)
        return XML_COND_NOT_WELL_FORMED;
    return XML_COND_NONE;
}

xml_cond xml_stream_error_parse(const xml_node *err, const char **text)
{
    xml_cond cond = XML_COND_NONE;
    if (text)
        *text = NULL;
    if (!err || err->type != XML_N_ELEMENT)
        return XML_COND_UNDEFINED_CONDITION;
    for (const xml_node *c = err->children; c; c = c->next) {
        if (!xml_is(c, NULL, XML_NS_STREAM_ERRORS))
            continue;
        if (strcmp(c->name, "text") == 0) {
            if (text)
                *text = xml_elem_text(c, NULL);
        } else if (cond == XML_COND_NONE) {
            cond = xml_cond_from_name(c->name);
        }
    }
    return cond == XML_COND_NONE ? XML_COND_UNDEFINED_CONDITION : cond;
}
