/*
 * keys.h — CURVE key files and the parent's allow-list of children's keys.
 *
 * A key file holds one z85 key (40 characters) and an optional newline.
 * Invariants: a secret key file is created with O_EXCL and mode 0600 (never
 * overwritten, never readable by others) and is refused when its mode lets
 * the group or others read it; a key is accepted only when it decodes to 32
 * bytes. An allow-list binds each child's public key to exactly one unit code;
 * a file with any bad line is refused as a whole, so a typo never silently
 * drops or admits a child.
 */
#ifndef LT_KEYS_H
#define LT_KEYS_H

#include <stddef.h>
#include <stdint.h>

#define LT_KEY_Z85_LEN 40 /* characters of a z85 CURVE key */
#define LT_KEY_BYTES 32

/* Create a new key pair: the secret file with O_EXCL and mode 0600, the public
   file with O_EXCL and mode 0644. Refuses (-1, reason in err) when either file
   exists; nothing is left behind on failure. public_z85 (41 bytes, may be NULL)
   receives the public key. */
int lt_keys_generate(const char *secret_path, const char *public_path, char *public_z85,
                     char *err, size_t errlen) __attribute__((warn_unused_result));

/* Read one z85 key from path into z85 (41 bytes, NUL-terminated). secret != 0
   also refuses a file the group or others may read. 0, or -1 with the reason. */
int lt_keys_read(const char *path, int secret, char *z85, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* A z85 key string (exactly 40 characters) -> 32 bytes. 0 or -1. */
int lt_keys_decode(const char *z85, uint8_t *key) __attribute__((warn_unused_result));

/* The public key that belongs to a z85 secret key, into public_z85 (41 bytes). 0 or -1. */
int lt_keys_public_of(const char *secret_z85, char *public_z85) __attribute__((warn_unused_result));

typedef struct lt_allowlist lt_allowlist_t;

/* Parse an allow-list: one "<unit code> <z85 public key>" per line, blanks
   around fields ignored, blank lines skipped; a field starting with '#' starts a
   comment (a z85 key may hold '#' but never starts with it). A unit code is 2 to 5
   digits; a unit may have several keys (key rotation), a key only one unit.
   NULL on any bad line, with "name:line: reason" in err. */
lt_allowlist_t *lt_allowlist_parse(const char *text, const char *name, char *err, size_t errlen);
/* The same from a file. */
lt_allowlist_t *lt_allowlist_load(const char *path, char *err, size_t errlen);
void lt_allowlist_destroy(lt_allowlist_t **list_p);

/* The unit bound to a 32-byte public key, or NULL when the key is not listed.
   The string lives as long as the list. */
const char *lt_allowlist_find(const lt_allowlist_t *list, const uint8_t *key);
size_t lt_allowlist_count(const lt_allowlist_t *list);

#endif
