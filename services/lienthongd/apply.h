/*
 * apply.h — the parent's apply queue: HELLOs and batches from children, applied one
 * at a time on the node's database, each batch in ONE transaction
 * (lt.apply_batch), acknowledged only after COMMIT returned. A batch the database
 * refuses is split in halves until the refused record stands alone; that record
 * is quarantined (lt.quarantine) and the rest applied, so one poison record never
 * blocks a link. Memory is bounded by sync.apply_queue_bytes: beyond it a batch
 * is refused with BUSY and the child sends it again later from its outbox.
 */
#ifndef LT_APPLY_H
#define LT_APPLY_H

#include <stddef.h>
#include <stdint.h>

#include "daemon.h"
#include "pgconn.h"
#include "wire.h"

typedef struct applier applier_t;

typedef struct {
    /* send one encoded message to the peer with this routing id */
    void (*send)(void *arg, const uint8_t *rid, size_t rid_len, const char *buf, size_t len);
    /* a HELLO was accepted (ok=1) or refused (ok=0) by the database */
    void (*welcomed)(void *arg, const uint8_t *rid, size_t rid_len, const char *unit, int ok);
    void *arg;
} applier_hooks_t;

applier_t *applier_new(lt_daemon_t *d, pgconn_t *db, const applier_hooks_t *hooks);
/* The owner is stopping and is about to close the database connection: the job in
   progress and the queue are then abandoned quietly (logged once, nothing sent). */
void applier_stop(applier_t *a);
void applier_destroy(applier_t **a_p);

/* Queue a HELLO from `unit` (already authenticated by the caller). While the database
   is down it is answered at once with ERROR UNAVAILABLE (and hooks.welcomed(ok=0)). */
int applier_submit_hello(applier_t *a, const uint8_t *rid, size_t rid_len, const char *unit,
                         uint64_t child_max_seq) __attribute__((warn_unused_result));
/* Queue a decoded BATCH; takes ownership of *msg (zeroed on return, either way).
   -1 when the queue is full (the caller answers BUSY). */
int applier_submit_batch(applier_t *a, const uint8_t *rid, size_t rid_len, const char *unit,
                         lt_msg_t *msg, size_t wire_bytes) __attribute__((warn_unused_result));
/* The database connection came up (1) or went down (0). */
void applier_db_state(applier_t *a, int up);
size_t applier_queue_bytes(const applier_t *a);
size_t applier_queue_len(const applier_t *a);

#endif
