/*
 * keys.c — see keys.h. Key files are small and read whole; the allow-list is
 * kept sorted by key so the per-message lookup of a parent is a binary search.
 */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define KEY_FILE_MAX 256            /* a key file is 40 characters and a newline */
#define ALLOWLIST_MAX (16u << 20)   /* bytes: far beyond any province's children */

typedef struct {
    uint8_t key[LT_KEY_BYTES];
    char unit[8];
    int line;
} entry_t;

struct lt_allowlist {
    entry_t *e;
    size_t n;
};

static void errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void errf(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    if (!err || !errlen)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ------------------------------------------------------------ key files */

int lt_keys_decode(const char *z85, uint8_t *key)
{
    if (!z85 || strlen(z85) != LT_KEY_Z85_LEN)
        return -1;
    return zmq_z85_decode(key, z85) ? 0 : -1;
}

int lt_keys_public_of(const char *secret_z85, char *public_z85)
{
    uint8_t raw[LT_KEY_BYTES];
    if (lt_keys_decode(secret_z85, raw) != 0)
        return -1;
    return zmq_curve_public(public_z85, secret_z85) == 0 ? 0 : -1;
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Create path (O_EXCL) with exactly `mode` and the key and a newline in it. */
static int write_key_file(const char *path, const char *z85, mode_t mode, char *err, size_t errlen)
{
    char line[LT_KEY_Z85_LEN + 2];
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0) {
        errf(err, errlen, "cannot create %s: %s%s", path, strerror(errno),
             errno == EEXIST ? " (key files are never overwritten; move the old one away first)" : "");
        return -1;
    }
    snprintf(line, sizeof(line), "%s\n", z85);
    /* the umask may have taken bits away, never added: set the mode exactly */
    if (fchmod(fd, mode) != 0 || write_all(fd, line, strlen(line)) != 0 || fsync(fd) != 0) {
        errf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        unlink(path);
        return -1;
    }
    if (close(fd) != 0) {
        errf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(path);
        return -1;
    }
    return 0;
}

int lt_keys_generate(const char *secret_path, const char *public_path, char *public_z85, char *err,
                     size_t errlen)
{
    char pub[LT_KEY_Z85_LEN + 1], sec[LT_KEY_Z85_LEN + 1];
    struct stat st;
    int rc = -1;

    if (strcmp(secret_path, public_path) == 0) {
        errf(err, errlen, "the secret and the public key need two different files");
        return -1;
    }
    if (lstat(public_path, &st) == 0) {
        errf(err, errlen, "%s exists (key files are never overwritten; move the old one away first)",
             public_path);
        return -1;
    }
    if (zmq_curve_keypair(pub, sec) != 0) {
        errf(err, errlen, "cannot generate a CURVE key pair: %s", zmq_strerror(errno));
        return -1;
    }
    if (write_key_file(secret_path, sec, 0600, err, errlen) != 0)
        goto out;
    if (write_key_file(public_path, pub, 0644, err, errlen) != 0) {
        unlink(secret_path);
        goto out;
    }
    if (public_z85)
        memcpy(public_z85, pub, sizeof(pub));
    rc = 0;
out:
    memset(sec, 0, sizeof(sec));
    return rc;
}

int lt_keys_read(const char *path, int secret, char *z85, char *err, size_t errlen)
{
    char buf[KEY_FILE_MAX + 1];
    struct stat st;
    size_t len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        errf(err, errlen, "cannot open key file %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        errf(err, errlen, "key file %s is not a regular file", path);
        goto fail;
    }
    if (secret && (st.st_mode & 077)) {
        errf(err, errlen, "secret key file %s may be read by others (mode %04o); it must be 0600 (chmod 600)",
             path, (unsigned)(st.st_mode & 07777));
        goto fail;
    }
    for (;;) {
        ssize_t n = read(fd, buf + len, KEY_FILE_MAX + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            errf(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > KEY_FILE_MAX) {
            errf(err, errlen, "key file %s is too long to hold one key", path);
            goto fail;
        }
    }
    close(fd);
    fd = -1;
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' || buf[len - 1] == '\t'))
        len--;
    buf[len] = '\0';
    uint8_t raw[LT_KEY_BYTES];
    if (len != LT_KEY_Z85_LEN || lt_keys_decode(buf, raw) != 0) {
        errf(err, errlen, "key file %s does not hold a z85 key (40 characters)", path);
        memset(buf, 0, sizeof(buf));
        return -1;
    }
    memcpy(z85, buf, LT_KEY_Z85_LEN + 1);
    memset(buf, 0, sizeof(buf));
    return 0;
fail:
    if (fd >= 0)
        close(fd);
    memset(buf, 0, sizeof(buf));
    return -1;
}

/* ------------------------------------------------------------ allow-list */

static int entry_cmp(const void *a, const void *b)
{
    return memcmp(((const entry_t *)a)->key, ((const entry_t *)b)->key, LT_KEY_BYTES);
}

static int valid_unit(const char *s, size_t n)
{
    if (n < 2 || n > 5)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

lt_allowlist_t *lt_allowlist_parse(const char *text, const char *name, char *err, size_t errlen)
{
    lt_allowlist_t *l = calloc(1, sizeof(*l));
    size_t cap = 0;
    int lineno = 0;

    if (!l) {
        errf(err, errlen, "%s: out of memory", name);
        return NULL;
    }
    for (const char *p = text; *p;) {
        const char *eol = strchr(p, '\n');
        const char *end = eol ? eol : p + strlen(p);
        const char *f[2];
        size_t fl[2];
        int nf = 0;

        lineno++;
        /* a field starting with '#' starts a comment: '#' is a z85 character,
           but never the first of a 5-character group (4 bytes encode to at
           most "%nSc0"), so a key never starts with it */
        for (const char *q = p; q < end;) {
            while (q < end && is_blank(*q))
                q++;
            if (q == end || *q == '#')
                break;
            const char *s = q;
            while (q < end && !is_blank(*q))
                q++;
            if (nf == 2) { /* a third field */
                nf++;
                break;
            }
            f[nf] = s;
            fl[nf++] = (size_t)(q - s);
        }
        p = eol ? eol + 1 : end;
        if (nf == 0)
            continue;
        if (nf != 2) {
            errf(err, errlen, "%s:%d: expected \"<unit code> <z85 public key>\"", name, lineno);
            goto fail;
        }
        if (!valid_unit(f[0], fl[0])) {
            errf(err, errlen, "%s:%d: \"%.*s\" is not a unit code (2 to 5 digits)", name, lineno,
                 (int)(fl[0] > 16 ? 16 : fl[0]), f[0]);
            goto fail;
        }
        char z85[LT_KEY_Z85_LEN + 1];
        entry_t e = {.line = lineno};
        if (fl[1] != LT_KEY_Z85_LEN) {
            errf(err, errlen, "%s:%d: the key of %.*s is not a z85 key (40 characters, got %zu)", name,
                 lineno, (int)fl[0], f[0], fl[1]);
            goto fail;
        }
        memcpy(z85, f[1], LT_KEY_Z85_LEN);
        z85[LT_KEY_Z85_LEN] = '\0';
        if (lt_keys_decode(z85, e.key) != 0) {
            errf(err, errlen, "%s:%d: the key of %.*s is not valid z85", name, lineno, (int)fl[0], f[0]);
            goto fail;
        }
        memcpy(e.unit, f[0], fl[0]);
        e.unit[fl[0]] = '\0';
        if (l->n == cap) {
            size_t ncap = cap ? cap * 2 : 64;
            entry_t *ne = realloc(l->e, ncap * sizeof(*ne));
            if (!ne) {
                errf(err, errlen, "%s: out of memory", name);
                goto fail;
            }
            l->e = ne;
            cap = ncap;
        }
        l->e[l->n++] = e;
    }
    if (l->n)
        qsort(l->e, l->n, sizeof(*l->e), entry_cmp);
    for (size_t i = 1; i < l->n; i++) {
        if (entry_cmp(&l->e[i - 1], &l->e[i]) == 0) {
            const entry_t *a = &l->e[i - 1], *b = &l->e[i];
            if (a->line > b->line) {
                const entry_t *t = a;
                a = b;
                b = t;
            }
            errf(err, errlen, "%s:%d: this key is already listed on line %d (for %s); a key belongs to one unit",
                 name, b->line, a->line, a->unit);
            goto fail;
        }
    }
    return l;
fail:
    lt_allowlist_destroy(&l);
    return NULL;
}

lt_allowlist_t *lt_allowlist_load(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "re");
    char *buf = NULL;
    size_t len = 0, cap = 0;
    lt_allowlist_t *l = NULL;

    if (!f) {
        errf(err, errlen, "cannot open allow-list %s: %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (len + 4096 + 1 > cap) {
            size_t ncap = cap ? cap * 2 : 8192;
            char *nb = ncap > ALLOWLIST_MAX + 8192 ? NULL : realloc(buf, ncap);
            if (!nb) {
                errf(err, errlen, "allow-list %s is too large", path);
                goto out;
            }
            buf = nb;
            cap = ncap;
        }
        size_t n = fread(buf + len, 1, 4096, f);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(f)) {
        errf(err, errlen, "cannot read allow-list %s: %s", path, strerror(errno));
        goto out;
    }
    if (memchr(buf, '\0', len)) {
        errf(err, errlen, "allow-list %s holds a NUL byte", path);
        goto out;
    }
    buf[len] = '\0';
    l = lt_allowlist_parse(buf, path, err, errlen);
out:
    fclose(f);
    free(buf);
    return l;
}

void lt_allowlist_destroy(lt_allowlist_t **list_p)
{
    if (!list_p || !*list_p)
        return;
    free((*list_p)->e);
    free(*list_p);
    *list_p = NULL;
}

const char *lt_allowlist_find(const lt_allowlist_t *list, const uint8_t *key)
{
    entry_t probe;
    if (!list || !list->n)
        return NULL;
    memcpy(probe.key, key, LT_KEY_BYTES);
    const entry_t *e = bsearch(&probe, list->e, list->n, sizeof(*list->e), entry_cmp);
    return e ? e->unit : NULL;
}

size_t lt_allowlist_count(const lt_allowlist_t *list)
{
    return list ? list->n : 0;
}
