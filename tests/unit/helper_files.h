/* helper_files.h: file helpers shared by the unit tests (linked into each). */
#ifndef TESTS_HELPER_FILES_H
#define TESTS_HELPER_FILES_H

#include <stddef.h>

/* The whole file, NUL-terminated (not counted in *len); NULL on failure. */
char *tf_read_file(const char *path, size_t *len);

#endif
