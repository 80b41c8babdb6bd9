/* ctl.h: psycgatectl, the local admin tool (DESIGN.md §7). One file per
 * command group; each returns the process exit status. */
#ifndef PSYCGATE_CTL_H
#define PSYCGATE_CTL_H

#include <stddef.h>

int ctl_psyc(int argc, char **argv);
int ctl_jid(int argc, char **argv);
int ctl_xml(int argc, char **argv);

/* Reads a whole file; NULL and a message on stderr on failure. */
char *ctl_read_file(const char *path, size_t *len);

#endif
