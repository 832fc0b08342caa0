/*
 * cmd_keygen.c — `lienthong keygen`: a node's CURVE key pair for its links.
 *
 *   lienthong keygen DIR                        DIR/secret.key and DIR/public.key
 *   lienthong keygen --secret FILE --public FILE
 *
 * The secret file is created with O_EXCL and mode 0600, the public one 0644
 * (common/keys.c): an existing key is never overwritten. The public key is
 * printed on stdout, alone on its line, for the parent's allow-list
 * (security.children_keys_file: "<unit code> <public key>").
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "keys.h"


int cmd_keygen(cli_t *cli)
{
    const char *dir = NULL, *secret = NULL, *public = NULL;
    char sec_path[1024], pub_path[1024], pub[LT_KEY_Z85_LEN + 1], err[512];

    for (int i = 0; i < cli->argc; i++) {
        const char *a = cli->argv[i];
        if (strcmp(a, "--secret") == 0 && i + 1 < cli->argc)
            secret = cli->argv[++i];
        else if (strcmp(a, "--public") == 0 && i + 1 < cli->argc)
            public = cli->argv[++i];
        else if (a[0] != '-' && !dir)
            dir = a;
        else {
            fprintf(stderr, "lienthong: keygen: unexpected argument \"%s\"\n", a);
            goto usage;
        }
    }
    if (dir && (secret || public))
        goto usage;
    if (dir) {
        if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "lienthong: cannot create %s: %s\n", dir, strerror(errno));
            return 2;
        }
        if ((size_t)snprintf(sec_path, sizeof(sec_path), "%s/secret.key", dir) >= sizeof(sec_path) ||
            (size_t)snprintf(pub_path, sizeof(pub_path), "%s/public.key", dir) >= sizeof(pub_path)) {
            fprintf(stderr, "lienthong: keygen: directory name too long\n");
            return 2;
        }
        secret = sec_path;
        public = pub_path;
    }
    if (!secret || !public)
        goto usage;
    if (lt_keys_generate(secret, public, pub, err, sizeof(err)) != 0) {
        fprintf(stderr, "lienthong: keygen: %s\n", err);
        return 2;
    }
    printf("%s\n", pub);
    fprintf(stderr,
            "wrote the secret key to %s (mode 0600; it never leaves this node) and the public key to %s.\n"
            "Give the public key to the parent: one line \"%s %s\" in its security.children_keys_file.\n",
            secret, public, cli->have_cfg ? cli->cfg.unit : "<unit code>", pub);
    return 0;
usage:
    fprintf(stderr, "usage: lienthong keygen DIR | lienthong keygen --secret FILE --public FILE\n");
    return 2;
}
