/* s2s_secret.c: the persistent dialback secret (see s2s_secret.h). */
#include "gateway/s2s_secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#define SECRET_BYTES 32

static int secret_is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static int secret_read(const char *path, char out[S2S_SECRET_HEX_LEN + 1], char *err, size_t errsz)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(err, errsz, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errsz, "%s is not a regular file", path);
        close(fd);
        return -1;
    }
    /* Anyone who can read the secret can forge our dialback keys. */
    if (st.st_mode & (S_IRWXG | S_IRWXO)) {
        snprintf(err, errsz, "%s is readable by others (mode %03o); chmod 600 it", path,
                 (unsigned)(st.st_mode & 0777));
        close(fd);
        return -1;
    }
    char buf[S2S_SECRET_HEX_LEN + 8];
    ssize_t n = read(fd, buf, sizeof buf);
    close(fd);
    if (n < 0) {
        snprintf(err, errsz, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    size_t len = (size_t)n;
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    if (len != S2S_SECRET_HEX_LEN || !secret_is_hex(buf, len)) {
        snprintf(err, errsz, "%s does not hold %d lower-case hex digits", path, S2S_SECRET_HEX_LEN);
        return -1;
    }
    memcpy(out, buf, S2S_SECRET_HEX_LEN);
    out[S2S_SECRET_HEX_LEN] = '\0';
    OPENSSL_cleanse(buf, sizeof buf);
    return 0;
}

/* Written under a temporary name and linked into place, so a crash never
 * leaves a half-written secret and two starts cannot both win. */
static int secret_create(const char *dir, const char *path, char out[S2S_SECRET_HEX_LEN + 1],
                         char *err, size_t errsz)
{
    unsigned char raw[SECRET_BYTES];
    if (RAND_bytes(raw, sizeof raw) != 1) {
        snprintf(err, errsz, "no random bytes for the dialback secret");
        return -1;
    }
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < SECRET_BYTES; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[S2S_SECRET_HEX_LEN] = '\0';
    OPENSSL_cleanse(raw, sizeof raw);

    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/.%s.%ld", dir, S2S_SECRET_FILE, (long)getpid()) >=
        sizeof tmp) {
        snprintf(err, errsz, "state_dir path too long");
        return -1;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(err, errsz, "cannot create %s: %s", tmp, strerror(errno));
        return -1;
    }
    char line[S2S_SECRET_HEX_LEN + 1];
    memcpy(line, out, S2S_SECRET_HEX_LEN);
    line[S2S_SECRET_HEX_LEN] = '\n';
    int ok = write(fd, line, sizeof line) == (ssize_t)sizeof line && fsync(fd) == 0;
    OPENSSL_cleanse(line, sizeof line);
    if (close(fd) != 0)
        ok = 0;
    if (!ok) {
        snprintf(err, errsz, "cannot write %s: %s", tmp, strerror(errno));
        unlink(tmp);
        return -1;
    }
    int rc = link(tmp, path);
    int saved = errno;
    unlink(tmp);
    if (rc != 0) {
        if (saved == EEXIST) /* another start was faster: use its secret */
            return secret_read(path, out, err, errsz);
        snprintf(err, errsz, "cannot create %s: %s", path, strerror(saved));
        return -1;
    }
    return 0;
}

int s2s_secret_load(const char *state_dir, char out[S2S_SECRET_HEX_LEN + 1], int *created,
                    char *err, size_t errsz)
{
    *created = 0;
    if (!state_dir || !*state_dir) {
        snprintf(err, errsz, "no [gateway] state_dir");
        return -1;
    }
    if (mkdir(state_dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errsz, "cannot create %s: %s", state_dir, strerror(errno));
        return -1;
    }
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/%s", state_dir, S2S_SECRET_FILE) >= sizeof path) {
        snprintf(err, errsz, "state_dir path too long");
        return -1;
    }
    struct stat st;
    if (lstat(path, &st) == 0)
        return secret_read(path, out, err, errsz);
    if (errno != ENOENT) {
        snprintf(err, errsz, "cannot stat %s: %s", path, strerror(errno));
        return -1;
    }
    if (secret_create(state_dir, path, out, err, errsz) != 0)
        return -1;
    *created = 1;
    return 0;
}

int s2s_secret_check(const char *state_dir, char *err, size_t errsz)
{
    char path[4096], out[S2S_SECRET_HEX_LEN + 1];
    if (!state_dir || !*state_dir ||
        (size_t)snprintf(path, sizeof path, "%s/%s", state_dir, S2S_SECRET_FILE) >= sizeof path) {
        snprintf(err, errsz, "no usable [gateway] state_dir");
        return -1;
    }
    struct stat st;
    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : (snprintf(err, errsz, "cannot stat %s: %s", path, strerror(errno)), -1);
    int rc = secret_read(path, out, err, errsz);
    OPENSSL_cleanse(out, sizeof out);
    return rc == 0 ? 1 : -1;
}
