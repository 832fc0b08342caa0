/*
 * ltdelay.c — a TCP relay that adds a fixed one-way latency to a link, for the
 * fault-injection test bed (tests/lib/netns.sh): the kernels the tests run on have
 * no netem, so a link is delayed by pointing the child at this relay instead of at
 * its parent.
 *
 *   ltdelay [-d MS] [-f DELAY_FILE] LISTEN_HOST:PORT TARGET_HOST:PORT
 *
 * Every accepted connection gets its own connection to TARGET. Bytes read from
 * either side are held for MS milliseconds, then written to the other side. SIGHUP
 * re-reads MS from DELAY_FILE (one integer), so a running link can be slowed down or
 * sped up without being broken. A side that closes is half-closed on the other once
 * everything it sent has been delivered; an error on either side closes both.
 *
 * Invariants: bytes leave in the order they came and never before they are due;
 * nothing is dropped while both sides are open; memory is bounded: at most
 * QUEUE_CAP bytes wait per direction, beyond which the relay stops reading that
 * side and TCP pushes back on the sender.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_PAIRS 128
#define CHUNK 65536
#define QUEUE_CAP (4u << 20)

typedef struct chunk {
    struct chunk *next;
    uint64_t due_ms;
    size_t len, off;
    char data[];
} chunk_t;

typedef struct {
    chunk_t *head, *tail;
    size_t bytes;
} queue_t;

/* side 0: the accepted client, side 1: the connection to the target.
   q[s] holds what side s sent, on its way to side 1 - s. */
typedef struct {
    int fd[2];
    int connecting;  /* side 1's connect() is still in progress */
    int eof[2];      /* side s will send nothing more */
    int shut[2];     /* side s has been told (SHUT_WR) that nothing more comes */
    queue_t q[2];
} pair_t;

static pair_t *pairs[MAX_PAIRS];
static volatile sig_atomic_t reload_requested;
static long delay_ms;
static const char *delay_file;

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void on_sighup(int sig)
{
    (void)sig;
    reload_requested = 1;
}

static void read_delay_file(void)
{
    FILE *f = fopen(delay_file, "r");
    long v;
    if (!f) {
        fprintf(stderr, "ltdelay: cannot read %s: %s; delay stays %ld ms\n", delay_file, strerror(errno),
                delay_ms);
        return;
    }
    if (fscanf(f, "%ld", &v) == 1 && v >= 0 && v <= 600000) {
        delay_ms = v;
        fprintf(stderr, "ltdelay: delay now %ld ms\n", delay_ms);
    } else {
        fprintf(stderr, "ltdelay: %s does not hold a delay in ms (0..600000); delay stays %ld ms\n",
                delay_file, delay_ms);
    }
    fclose(f);
}

/* "host:port" -> an IPv4/IPv6 address; 0 or -1. */
static int resolve(const char *spec, struct sockaddr_storage *sa, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;

    if (!colon || (size_t)(colon - spec) >= sizeof(host))
        return -1;
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = '\0';
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || !res)
        return -1;
    memcpy(sa, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static int set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void queue_clear(queue_t *q)
{
    while (q->head) {
        chunk_t *c = q->head;
        q->head = c->next;
        free(c);
    }
    q->tail = NULL;
    q->bytes = 0;
}

static void pair_close(int i)
{
    pair_t *p = pairs[i];
    for (int s = 0; s < 2; s++) {
        if (p->fd[s] >= 0)
            close(p->fd[s]);
        queue_clear(&p->q[s]);
    }
    free(p);
    pairs[i] = NULL;
}

static void accept_one(int lfd, const struct sockaddr_storage *target, socklen_t tlen)
{
    int c = accept(lfd, NULL, NULL), t = -1, slot = -1, one = 1;
    pair_t *p = NULL;

    if (c < 0)
        return;
    for (int i = 0; i < MAX_PAIRS && slot < 0; i++)
        if (!pairs[i])
            slot = i;
    if (slot < 0 || set_nonblock(c) != 0)
        goto fail;
    if ((t = socket(target->ss_family, SOCK_STREAM, 0)) < 0 || set_nonblock(t) != 0)
        goto fail;
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(t, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(t, (const struct sockaddr *)target, tlen) != 0 && errno != EINPROGRESS)
        goto fail;
    if (!(p = calloc(1, sizeof(*p))))
        goto fail;
    p->fd[0] = c;
    p->fd[1] = t;
    p->connecting = 1;
    pairs[slot] = p;
    return;
fail:
    close(c);
    if (t >= 0)
        close(t);
}

/* Read what side s has to say; 0, or -1 when the pair must close. */
static int pump_in(pair_t *p, int s, uint64_t now)
{
    queue_t *q = &p->q[s];
    while (!p->eof[s] && q->bytes < QUEUE_CAP) {
        chunk_t *c = malloc(sizeof(*c) + CHUNK);
        if (!c)
            return -1;
        ssize_t n = read(p->fd[s], c->data, CHUNK);
        if (n <= 0) {
            free(c);
            if (n == 0) {
                p->eof[s] = 1;
                return 0;
            }
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        }
        c->next = NULL;
        c->len = (size_t)n;
        c->off = 0;
        c->due_ms = now + (uint64_t)delay_ms;
        if (q->tail)
            q->tail->next = c;
        else
            q->head = c;
        q->tail = c;
        q->bytes += (size_t)n;
    }
    return 0;
}

/* Deliver what side s sent and is due to side 1 - s; 0, or -1 when the pair must close. */
static int pump_out(pair_t *p, int s, uint64_t now)
{
    queue_t *q = &p->q[s];
    int to = 1 - s;
    while (q->head && q->head->due_ms <= now) {
        chunk_t *c = q->head;
        ssize_t n = write(p->fd[to], c->data + c->off, c->len - c->off);
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        c->off += (size_t)n;
        q->bytes -= (size_t)n;
        if (c->off < c->len)
            return 0;
        q->head = c->next;
        if (!q->head)
            q->tail = NULL;
        free(c);
    }
    if (!q->head && p->eof[s] && !p->shut[to]) {
        shutdown(p->fd[to], SHUT_WR);
        p->shut[to] = 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct sockaddr_storage listen_sa, target_sa;
    socklen_t listen_len, target_len;
    struct pollfd pfd[1 + 2 * MAX_PAIRS];
    int map[1 + 2 * MAX_PAIRS], opt, lfd, one = 1;

    while ((opt = getopt(argc, argv, "d:f:")) != -1) {
        if (opt == 'd')
            delay_ms = strtol(optarg, NULL, 10);
        else if (opt == 'f')
            delay_file = optarg;
        else
            goto usage;
    }
    if (argc - optind != 2 || delay_ms < 0)
        goto usage;
    if (resolve(argv[optind], &listen_sa, &listen_len) != 0 ||
        resolve(argv[optind + 1], &target_sa, &target_len) != 0) {
        fprintf(stderr, "ltdelay: cannot resolve %s or %s\n", argv[optind], argv[optind + 1]);
        return 2;
    }
    if (delay_file)
        read_delay_file();

    struct sigaction sa = {.sa_handler = on_sighup};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL); /* no SA_RESTART: poll() returns EINTR */
    signal(SIGPIPE, SIG_IGN);

    if ((lfd = socket(listen_sa.ss_family, SOCK_STREAM, 0)) < 0 ||
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(lfd, (struct sockaddr *)&listen_sa, listen_len) != 0 || listen(lfd, 64) != 0 ||
        set_nonblock(lfd) != 0) {
        fprintf(stderr, "ltdelay: cannot listen on %s: %s\n", argv[optind], strerror(errno));
        return 2;
    }
    fprintf(stderr, "ltdelay: %s -> %s, delay %ld ms each way\n", argv[optind], argv[optind + 1], delay_ms);

    for (;;) {
        uint64_t now = mono_ms(), next_due = UINT64_MAX;
        int n = 0;

        if (reload_requested) {
            reload_requested = 0;
            if (delay_file)
                read_delay_file();
        }
        pfd[n] = (struct pollfd){.fd = lfd, .events = POLLIN};
        map[n++] = -1;
        for (int i = 0; i < MAX_PAIRS; i++) {
            pair_t *p = pairs[i];
            if (!p)
                continue;
            for (int s = 0; s < 2; s++) {
                short ev = 0;
                const chunk_t *in = p->q[1 - s].head; /* what side s is to receive */
                if (s == 1 && p->connecting) {
                    ev = POLLOUT;
                } else {
                    if (!p->eof[s] && p->q[s].bytes < QUEUE_CAP)
                        ev |= POLLIN;
                    if (in && in->due_ms <= now)
                        ev |= POLLOUT;
                }
                if (in && in->due_ms > now && in->due_ms < next_due)
                    next_due = in->due_ms;
                /* a side with nothing to read or receive is left out: a closed
                   socket would report POLLHUP on every call */
                pfd[n] = (struct pollfd){.fd = ev ? p->fd[s] : -1, .events = ev};
                map[n++] = i * 2 + s;
            }
        }
        int timeout = next_due == UINT64_MAX ? -1 : (int)(next_due - now);
        if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR) {
            perror("ltdelay: poll");
            return 1;
        }
        now = mono_ms();
        if (pfd[0].revents & POLLIN)
            for (int k = 0; k < 16; k++)
                accept_one(lfd, &target_sa, target_len);
        for (int k = 1; k < n; k++) {
            int i = map[k] / 2, s = map[k] % 2;
            pair_t *p = pairs[i];
            if (!p)
                continue;
            if (s == 1 && p->connecting) {
                int err = 0;
                socklen_t el = sizeof(err);
                if (!pfd[k].revents)
                    continue;
                if (getsockopt(p->fd[1], SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err) {
                    pair_close(i);
                    continue;
                }
                p->connecting = 0;
            }
            if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR))
                if (pump_in(p, s, now) != 0) {
                    pair_close(i);
                    continue;
                }
        }
        /* deliver whatever is due, on every pair, then retire finished pairs */
        for (int i = 0; i < MAX_PAIRS; i++) {
            pair_t *p = pairs[i];
            if (!p || p->connecting)
                continue;
            if (pump_out(p, 0, now) != 0 || pump_out(p, 1, now) != 0 || (p->shut[0] && p->shut[1]))
                pair_close(i);
        }
    }
usage:
    fprintf(stderr, "usage: ltdelay [-d MS] [-f DELAY_FILE] LISTEN_HOST:PORT TARGET_HOST:PORT\n"
                    "  each byte is held MS ms (default 0) in each direction; SIGHUP re-reads\n"
                    "  MS from DELAY_FILE\n");
    return 2;
}
