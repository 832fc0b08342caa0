/*
 * test_keys.c — CURVE key files (modes, O_EXCL, contents, refusal of unsafe or
 * malformed files) and the parent's allow-list (lookups, comments, and each
 * kind of bad line refused with its line number). Files go to a mkdtemp
 * directory per test.
 */
#include "keys.h"
#include "unit.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

static char dir[64];
static char sec_path[128], pub_path[128];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/lt-test-keys-XXXXXX");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(sec_path, sizeof(sec_path), "%s/node.key", dir);
    snprintf(pub_path, sizeof(pub_path), "%s/node.pub", dir);
}

static void teardown(void)
{
    unlink(sec_path);
    unlink(pub_path);
    rmdir(dir);
}

static unsigned mode_of(const char *path)
{
    struct stat st;
    CHECK(stat(path, &st) == 0);
    return (unsigned)(st.st_mode & 07777);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    CHECK(fchmod(fd, mode) == 0);
    close(fd);
}

static void expect_contains(const char *err, const char *needle)
{
    if (!strstr(err, needle)) {
        fprintf(stderr, "  error \"%s\" does not say \"%s\"\n", err, needle);
        exit(1);
    }
}

TEST(generate_writes_a_pair_with_safe_modes_whatever_the_umask)
{
    char pub[41], sec[41], again[41], derived[41], err[256] = "";
    setup();
    umask(0); /* a careless umask must not widen the secret's mode */
    CHECK(lt_keys_generate(sec_path, pub_path, pub, err, sizeof(err)) == 0);
    CHECK_EQ_INT(mode_of(sec_path), 0600);
    CHECK_EQ_INT(mode_of(pub_path), 0644);
    CHECK(lt_keys_read(sec_path, 1, sec, err, sizeof(err)) == 0);
    CHECK(lt_keys_read(pub_path, 0, again, err, sizeof(err)) == 0);
    CHECK_EQ_STR(again, pub);
    CHECK_EQ_INT(strlen(sec), 40);
    CHECK(strcmp(sec, pub) != 0);
    CHECK(lt_keys_public_of(sec, derived) == 0);
    CHECK_EQ_STR(derived, pub); /* the files are one pair */
    teardown();

    setup();
    umask(077); /* a strict umask must not hide the public key */
    CHECK(lt_keys_generate(sec_path, pub_path, NULL, err, sizeof(err)) == 0);
    CHECK_EQ_INT(mode_of(sec_path), 0600);
    CHECK_EQ_INT(mode_of(pub_path), 0644);
    teardown();
}

TEST(generate_never_overwrites)
{
    char err[256] = "", before[41], after[41];
    setup();
    CHECK(lt_keys_generate(sec_path, pub_path, NULL, err, sizeof(err)) == 0);
    CHECK(lt_keys_read(sec_path, 1, before, err, sizeof(err)) == 0);
    /* both exist */
    CHECK(lt_keys_generate(sec_path, pub_path, NULL, err, sizeof(err)) == -1);
    expect_contains(err, "never overwritten");
    CHECK(lt_keys_read(sec_path, 1, after, err, sizeof(err)) == 0);
    CHECK_EQ_STR(after, before);
    /* only the secret exists: refused, the secret untouched, no public key written */
    CHECK(unlink(pub_path) == 0);
    CHECK(lt_keys_generate(sec_path, pub_path, NULL, err, sizeof(err)) == -1);
    expect_contains(err, "File exists");
    CHECK(access(pub_path, F_OK) != 0);
    CHECK(lt_keys_read(sec_path, 1, after, err, sizeof(err)) == 0);
    CHECK_EQ_STR(after, before);
    /* only the public key exists: refused before any secret is written */
    CHECK(rename(sec_path, pub_path) == 0);
    CHECK(lt_keys_generate(sec_path, pub_path, NULL, err, sizeof(err)) == -1);
    CHECK(access(sec_path, F_OK) != 0);
    /* the same file for both */
    CHECK(lt_keys_generate(pub_path, pub_path, NULL, err, sizeof(err)) == -1);
    teardown();
}

TEST(secret_key_readable_by_others_is_refused)
{
    char z85[41], err[256] = "";
    setup();
    CHECK(lt_keys_generate(sec_path, pub_path, NULL, err, sizeof(err)) == 0);
    CHECK(chmod(sec_path, 0644) == 0);
    CHECK(lt_keys_read(sec_path, 1, z85, err, sizeof(err)) == -1);
    expect_contains(err, "0644");
    CHECK(chmod(sec_path, 0640) == 0);
    CHECK(lt_keys_read(sec_path, 1, z85, err, sizeof(err)) == -1);
    CHECK(chmod(sec_path, 0604) == 0);
    CHECK(lt_keys_read(sec_path, 1, z85, err, sizeof(err)) == -1);
    CHECK(chmod(sec_path, 0400) == 0);
    CHECK(lt_keys_read(sec_path, 1, z85, err, sizeof(err)) == 0);
    /* a public key may be world-readable */
    CHECK(lt_keys_read(pub_path, 0, z85, err, sizeof(err)) == 0);
    teardown();
}

TEST(malformed_key_files_are_refused)
{
    char z85[41], err[256] = "", pub[41], sec[41];
    setup();
    CHECK(zmq_curve_keypair(pub, sec) == 0);
    char text[128];
    static const char *const bad[] = {
        "",
        "\n",
        "0123456789012345678901234567890123456789" "0\n", /* 41 characters */
        "012345678901234567890123456789012345678\n",      /* 39 */
        "01234567890123456789 1234567890123456789\n",     /* a blank inside */
        "0123456789012345678901234567890123456~~~\n",     /* '~' is not z85 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_file(pub_path, bad[i], 0644);
        if (lt_keys_read(pub_path, 0, z85, err, sizeof(err)) != -1) {
            fprintf(stderr, "  bad key file %zu accepted\n", i);
            exit(1);
        }
    }
    /* a trailing CRLF and blanks are fine */
    snprintf(text, sizeof(text), "%s \r\n", pub);
    write_file(pub_path, text, 0644);
    CHECK(lt_keys_read(pub_path, 0, z85, err, sizeof(err)) == 0);
    CHECK_EQ_STR(z85, pub);
    /* a directory, a missing file */
    CHECK(lt_keys_read(dir, 0, z85, err, sizeof(err)) == -1);
    unlink(pub_path);
    CHECK(lt_keys_read(pub_path, 0, z85, err, sizeof(err)) == -1);
    expect_contains(err, "No such file");
    teardown();
}

/* ------------------------------------------------------------ allow-list */

static char k[4][41];

static void make_keys(void)
{
    char sec[41];
    for (int i = 0; i < 4; i++)
        CHECK(zmq_curve_keypair(k[i], sec) == 0);
}

static const char *unit_of(const lt_allowlist_t *l, const char *z85)
{
    uint8_t raw[32];
    CHECK(lt_keys_decode(z85, raw) == 0);
    return lt_allowlist_find(l, raw);
}

TEST(allowlist_binds_keys_to_units)
{
    char text[1024], err[256] = "";
    make_keys();
    snprintf(text, sizeof(text),
             "# children of district 223\n"
             "\n"
             "07840 %s\n"
             "  07843\t%s   # Xã Đoan Bái\r\n"
             "07840 %s\n" /* a second key for 07840 while its key is rotated */
             "   # indented comment\n"
             "07846 %s",  /* no final newline */
             k[0], k[1], k[2], k[3]);
    lt_allowlist_t *l = lt_allowlist_parse(text, "children.keys", err, sizeof(err));
    if (!l) {
        fprintf(stderr, "  %s\n", err);
        exit(1);
    }
    CHECK_EQ_INT(lt_allowlist_count(l), 4);
    CHECK_EQ_STR(unit_of(l, k[0]), "07840");
    CHECK_EQ_STR(unit_of(l, k[1]), "07843");
    CHECK_EQ_STR(unit_of(l, k[2]), "07840");
    CHECK_EQ_STR(unit_of(l, k[3]), "07846");
    char pub[41], sec[41];
    CHECK(zmq_curve_keypair(pub, sec) == 0);
    CHECK(unit_of(l, pub) == NULL); /* an unknown key */
    lt_allowlist_destroy(&l);
    CHECK(l == NULL);
    lt_allowlist_destroy(&l); /* idempotent */

    l = lt_allowlist_parse("# nobody yet\n\n", "empty", err, sizeof(err));
    CHECK(l != NULL);
    CHECK_EQ_INT(lt_allowlist_count(l), 0);
    CHECK(unit_of(l, k[0]) == NULL);
    lt_allowlist_destroy(&l);
}

TEST(allowlist_key_holding_a_hash_is_a_key_not_a_comment)
{
    char text[256], err[256] = "", pub[41], sec[41];
    int found = 0;
    /* '#' is a z85 character: about one key in three holds one */
    for (int i = 0; i < 1000 && !found; i++) {
        CHECK(zmq_curve_keypair(pub, sec) == 0);
        found = strchr(pub, '#') != NULL;
    }
    CHECK(found);
    CHECK(pub[0] != '#');
    snprintf(text, sizeof(text), "07840 %s # trailing comment\n#07843 %s\n", pub, pub);
    lt_allowlist_t *l = lt_allowlist_parse(text, "hash", err, sizeof(err));
    if (!l) {
        fprintf(stderr, "  %s\n", err);
        exit(1);
    }
    CHECK_EQ_INT(lt_allowlist_count(l), 1);
    CHECK_EQ_STR(unit_of(l, pub), "07840");
    lt_allowlist_destroy(&l);
}

static void expect_bad(const char *text, const char *needle)
{
    char err[256] = "";
    lt_allowlist_t *l = lt_allowlist_parse(text, "children.keys", err, sizeof(err));
    if (l || !strstr(err, needle)) {
        fprintf(stderr, "  list \"%s\": %s, error \"%s\", wanted \"%s\"\n", text, l ? "accepted" : "refused",
                err, needle);
        exit(1);
    }
}

TEST(allowlist_bad_lines_refuse_the_whole_file)
{
    char text[1024];
    make_keys();
    snprintf(text, sizeof(text), "07840 %s\n07843\n", k[0]);
    expect_bad(text, "children.keys:2: expected");
    snprintf(text, sizeof(text), "07840 %s extra\n", k[0]);
    expect_bad(text, "children.keys:1: expected");
    snprintf(text, sizeof(text), "# ok\n07840 %s\nABCDE %s\n", k[0], k[1]);
    expect_bad(text, "children.keys:3: \"ABCDE\" is not a unit code");
    snprintf(text, sizeof(text), "123456 %s\n", k[0]);
    expect_bad(text, ":1: \"123456\" is not a unit code");
    snprintf(text, sizeof(text), "7 %s\n", k[0]);
    expect_bad(text, "is not a unit code");
    snprintf(text, sizeof(text), "07840 %.39s\n", k[0]);
    expect_bad(text, ":1: the key of 07840 is not a z85 key (40 characters, got 39)");
    snprintf(text, sizeof(text), "07840 %.38s~~\n", k[0]);
    expect_bad(text, ":1: the key of 07840 is not valid z85");
    snprintf(text, sizeof(text), "07840 %s\n07843 %s\n\n07846 %s\n", k[0], k[1], k[0]);
    expect_bad(text, "children.keys:4: this key is already listed on line 1 (for 07840)");
    snprintf(text, sizeof(text), "07840 # no key\n");
    expect_bad(text, ":1: expected"); /* a comment where the key should be */
}

TEST(allowlist_load_from_a_file)
{
    char text[256], err[256] = "";
    setup();
    make_keys();
    snprintf(text, sizeof(text), "07840 %s\n", k[0]);
    write_file(pub_path, text, 0644);
    lt_allowlist_t *l = lt_allowlist_load(pub_path, err, sizeof(err));
    CHECK(l != NULL);
    CHECK_EQ_STR(unit_of(l, k[0]), "07840");
    lt_allowlist_destroy(&l);
    snprintf(text, sizeof(text), "07840 %s\nbad line here\n", k[0]);
    write_file(pub_path, text, 0644);
    CHECK(lt_allowlist_load(pub_path, err, sizeof(err)) == NULL);
    expect_contains(err, pub_path);
    expect_contains(err, ":2: ");
    unlink(pub_path);
    CHECK(lt_allowlist_load(pub_path, err, sizeof(err)) == NULL);
    expect_contains(err, "cannot open allow-list");
    teardown();
}
