/* psyc_echo.c: the PSYC echo service of the core boundary (see routing.h).
 * It proves the PSYC paths end to end: authenticated packet in, routing
 * decides, the answer goes out through the outgoing-circuit layer. */
#include "routing/routing.h"

#include <string.h>
#include <strings.h>

#define ECHO_PREFIX "echo: "

int routing_psyc_echo(const psyc_packet *in, const char *host, psyc_packet *out)
{
    const psyc_modifier *target = psyc_packet_find_routing(in, "_target");
    const psyc_modifier *source = psyc_packet_find_routing(in, "_source");
    /* Unicast only: a multicast (_context) is not addressed to ~echo
     * (PSYC.md §4.1), and without _source there is no one to answer. */
    if (!target || !source || psyc_packet_find_routing(in, "_context") || !in->method.ptr ||
        !psyc_inherits(in->method, PSYC_STR_LIT("_message_private")))
        return 0;
    psyc_uniform u;
    if (psyc_uniform_parse(&u, target->value) != PSYC_UNI_OK || !routing_psyc_is_local(target->value, host) ||
        u.entity_type != '~' || u.channel.len != 0 || u.nick.len != strlen(ROUTING_PSYC_ECHO_NICK) ||
        strncasecmp(u.nick.ptr, ROUTING_PSYC_ECHO_NICK, u.nick.len) != 0)
        return 0;

    psyc_buf self, body;
    psyc_buf_init(&self);
    psyc_buf_init(&body);
    int rc = 0;
    if (psyc_buf_puts(&self, "psyc://") || psyc_buf_puts(&self, host) ||
        psyc_buf_puts(&self, "/~" ROUTING_PSYC_ECHO_NICK) || psyc_buf_puts(&body, ECHO_PREFIX) ||
        psyc_buf_append(&body, in->data.ptr ? in->data.ptr : "", in->data.len))
        rc = PSYC_ERR_NOMEM;
    /* psyced writes _target before _source (captures README). */
    if (rc == 0)
        rc = psyc_packet_add_routing(out, ':', PSYC_STR_LIT("_target"), source->value);
    if (rc == 0)
        rc = psyc_packet_add_routing(out, ':', PSYC_STR_LIT("_source"), psyc_str_c(self.data));
    const psyc_modifier *tag = psyc_packet_find_routing(in, "_tag");
    if (rc == 0 && tag)
        rc = psyc_packet_add_routing(out, ':', PSYC_STR_LIT("_tag_relay"), tag->value);
    if (rc == 0)
        rc = psyc_packet_entity_c(out, "_nick", ROUTING_PSYC_ECHO_NICK);
    if (rc == 0)
        rc = psyc_packet_set_method(out, PSYC_STR_LIT("_message_private"));
    if (rc == 0)
        rc = psyc_packet_set_data(out, (psyc_str){body.data, body.len});
    psyc_buf_free(&self);
    psyc_buf_free(&body);
    return rc < 0 ? rc : 1;
}
