/*
 * The shared-memory channel: a single-producer single-consumer byte ring per direction, with futex
 * wake-ups, an optional bounded spin, deadlines and a liveness check while blocked.
 *
 * Trust: the peer can write anything into the shared page at any time. Each side keeps its own
 * counter in private memory and only publishes it; the peer's counter is loaded once per check and
 * validated (it may never claim more than `cap` bytes in flight, nor move backwards). Bytes are
 * copied out of the ring exactly once, into private memory, and validated there; nothing is ever
 * parsed in place. A peer that stops writing is caught by the deadline, a dead one by `alive`.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "enclave/enclave_int.h"

uint64_t
chan_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t
chan_deadline(uint32_t timeout_ms)
{
    if (timeout_ms == UINT32_MAX) {
        return CHAN_NO_DEADLINE;
    }
    return chan_now_ns() + (uint64_t)timeout_ms * 1000000ull;
}

int
chan_futex_wait(_Atomic uint32_t *word, uint32_t expect, uint64_t timeout_ns)
{
    struct timespec ts = {(time_t)(timeout_ns / 1000000000ull), (long)(timeout_ns % 1000000000ull)};
    /* Not FUTEX_PRIVATE_FLAG: the word is in a mapping shared with another process. */
    long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expect, &ts, NULL, 0);
    return r == 0 ? 0 : errno;
}

void
chan_futex_wake(_Atomic uint32_t *word)
{
    (void)syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, 1, NULL, NULL, 0);
}

static inline void
cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

void
ring_init(struct ring *r, struct ring_ctl *ctl, uint8_t *data, uint64_t cap, bool producer)
{
    r->ctl = ctl;
    r->data = data;
    r->cap = cap;
    r->pos = 0;
    r->peer = 0;
    r->producer = producer;
}

/* Loads and validates the peer's counter. Returns false when it is impossible. */
static bool
load_peer(struct ring *r)
{
    uint64_t p;
    if (r->producer) {
        /* Consumer's tail: never ahead of what we wrote, never more than cap behind. */
        p = atomic_load_explicit(&r->ctl->tail, memory_order_acquire);
        if (p > r->pos || r->pos - p > r->cap || p < r->peer) {
            return false;
        }
    } else {
        /* Producer's head: never behind our tail, never more than cap ahead. */
        p = atomic_load_explicit(&r->ctl->head, memory_order_acquire);
        if (p < r->pos || p - r->pos > r->cap || p < r->peer) {
            return false;
        }
    }
    r->peer = p;
    return true;
}

static enum clst_status
corrupt(struct clst_err *err)
{
    return clst_err_set(err, CLST_E_MALFORMED,
                        "the peer corrupted the channel (impossible ring counter)");
}

void
ring_publish(struct ring *r)
{
    struct ring_ctl *c = r->ctl;
    atomic_store_explicit(&c->head, r->pos, memory_order_seq_cst);
    atomic_fetch_add_explicit(&c->data_seq, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&c->consumer_waiting, memory_order_seq_cst) != 0) {
        chan_futex_wake(&c->data_seq);
    }
}

void
ring_release(struct ring *r)
{
    struct ring_ctl *c = r->ctl;
    atomic_store_explicit(&c->tail, r->pos, memory_order_seq_cst);
    atomic_fetch_add_explicit(&c->space_seq, 1, memory_order_seq_cst);
    if (atomic_load_explicit(&c->producer_waiting, memory_order_seq_cst) != 0) {
        chan_futex_wake(&c->space_seq);
    }
}

/* How many CPUs this thread may run on (1 means "both ends necessarily share it"). */
static int
usable_cpus(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) {
        return 1;
    }
    return CPU_COUNT(&set);
}

/* Spinning only helps when the peer runs on another CPU at the same time; when both ends share
 * one (pinned together, or the peer last ran where we run now) every spin steals the peer's time.
 */
static bool
may_spin(struct chan_wait *w, _Atomic int32_t *peer_cpu)
{
    if (!w->spin || w->spin_ns == 0) {
        return false;
    }
    int me = sched_getcpu();
    int peer = atomic_load_explicit(peer_cpu, memory_order_relaxed);
    if (me < 0 || me == peer || usable_cpus() < 2) {
        w->spins_skipped++;
        return false;
    }
    return true;
}

/*
 * Waits until ready(r) holds. `seq` is the futex word the peer bumps, `waiting` our flag, `mine`
 * and `peer_cpu` the CPU words. Before blocking, `flush` publishes our own progress so the peer
 * can make progress too (a producer's partial message, a consumer's freed space).
 */
static enum clst_status
wait_for(struct ring *r, struct chan_wait *w, bool (*ready)(struct ring *, bool *),
         _Atomic uint32_t *seq, _Atomic uint32_t *waiting, _Atomic int32_t *mine,
         _Atomic int32_t *peer_cpu, uint64_t deadline, struct clst_err *err)
{
    bool bad = false;
    if (ready(r, &bad)) {
        return CLST_OK;
    }
    if (bad) {
        return corrupt(err);
    }
    if (r->producer) {
        ring_publish(r);
    } else {
        ring_release(r);
    }
    atomic_store_explicit(mine, sched_getcpu(), memory_order_relaxed);
    if (may_spin(w, peer_cpu)) {
        w->spins++;
        uint64_t until = chan_now_ns() + w->spin_ns;
        for (unsigned i = 1;; i++) {
            if (ready(r, &bad)) {
                return CLST_OK;
            }
            if (bad) {
                return corrupt(err);
            }
            cpu_relax();
            if ((i & 63) == 0 && chan_now_ns() >= until) {
                break;
            }
        }
    }
    w->sleeps++;
    for (;;) {
        uint32_t s = atomic_load_explicit(seq, memory_order_seq_cst);
        atomic_store_explicit(waiting, 1, memory_order_seq_cst);
        if (ready(r, &bad) || bad) {
            atomic_store_explicit(waiting, 0, memory_order_relaxed);
            return bad ? corrupt(err) : CLST_OK;
        }
        uint64_t now = chan_now_ns();
        if (now >= deadline) {
            atomic_store_explicit(waiting, 0, memory_order_relaxed);
            w->timed_out = true;
            return clst_err_set(err, CLST_E_LIMIT, "timed out waiting for the peer");
        }
        uint64_t slice = deadline - now;
        if (w->slice_ns > 0 && slice > w->slice_ns) {
            slice = w->slice_ns;
        }
        int rc = chan_futex_wait(seq, s, slice);
        atomic_store_explicit(waiting, 0, memory_order_relaxed);
        if (rc == ETIMEDOUT && w->alive != NULL && !w->alive(w->alive_ctx)) {
            return clst_err_set(err, CLST_E_IO, "the peer process is gone");
        }
        atomic_store_explicit(mine, sched_getcpu(), memory_order_relaxed);
        if (ready(r, &bad)) {
            return CLST_OK;
        }
        if (bad) {
            return corrupt(err);
        }
    }
}

static bool
has_space(struct ring *r, bool *bad)
{
    if (!load_peer(r)) {
        *bad = true;
        return false;
    }
    return r->pos - r->peer < r->cap;
}

static bool
has_data(struct ring *r, bool *bad)
{
    if (!load_peer(r)) {
        *bad = true;
        return false;
    }
    return r->peer > r->pos;
}

bool
ring_ready(struct ring *r)
{
    bool bad = false;
    return has_data(r, &bad) || bad;
}

enum clst_status
ring_write(struct ring *r, struct chan_wait *w, const void *src, size_t n, uint64_t deadline,
           struct clst_err *err)
{
    const uint8_t *s = src;
    struct ring_ctl *c = r->ctl;
    while (n > 0) {
        enum clst_status st = wait_for(r, w, has_space, &c->space_seq, &c->producer_waiting,
                                       &c->producer_cpu, &c->consumer_cpu, deadline, err);
        if (st != CLST_OK) {
            return st;
        }
        uint64_t free_bytes = r->cap - (r->pos - r->peer);
        uint64_t off = r->pos & (r->cap - 1);
        uint64_t chunk = r->cap - off; /* contiguous room before the wrap */
        if (chunk > free_bytes) {
            chunk = free_bytes;
        }
        if (chunk > n) {
            chunk = n;
        }
        memcpy(r->data + off, s, (size_t)chunk);
        s += chunk;
        n -= (size_t)chunk;
        r->pos += chunk;
    }
    return CLST_OK;
}

enum clst_status
ring_read(struct ring *r, struct chan_wait *w, void *dst, size_t n, uint64_t deadline,
          struct clst_err *err)
{
    uint8_t *d = dst;
    struct ring_ctl *c = r->ctl;
    while (n > 0) {
        enum clst_status st = wait_for(r, w, has_data, &c->data_seq, &c->consumer_waiting,
                                       &c->consumer_cpu, &c->producer_cpu, deadline, err);
        if (st != CLST_OK) {
            return st;
        }
        uint64_t avail = r->peer - r->pos;
        uint64_t off = r->pos & (r->cap - 1);
        uint64_t chunk = r->cap - off;
        if (chunk > avail) {
            chunk = avail;
        }
        if (chunk > n) {
            chunk = n;
        }
        if (d != NULL) {
            memcpy(d, r->data + off, (size_t)chunk);
            d += chunk;
        }
        n -= (size_t)chunk;
        r->pos += chunk;
    }
    return CLST_OK;
}

enum clst_status
frame_send(struct ring *r, struct chan_wait *w, const struct frame_hdr *h, const char *name,
           const void *payload, uint64_t deadline, struct clst_err *err)
{
    uint8_t hdr[FRAME_HDR_SIZE];
    frame_hdr_encode(h, hdr);
    enum clst_status st = ring_write(r, w, hdr, sizeof(hdr), deadline, err);
    if (st == CLST_OK && h->name_size > 0) {
        st = ring_write(r, w, name, h->name_size, deadline, err);
    }
    if (st == CLST_OK && h->payload_size > 0) {
        st = ring_write(r, w, payload, h->payload_size, deadline, err);
    }
    if (st == CLST_OK) {
        ring_publish(r);
    }
    return st;
}

enum clst_status
frame_recv_hdr(struct ring *r, struct chan_wait *w, enum frame_dir dir,
               const struct frame_limits *lim, struct frame_hdr *out, uint64_t deadline,
               struct clst_err *err)
{
    uint8_t hdr[FRAME_HDR_SIZE];
    enum clst_status st = ring_read(r, w, hdr, sizeof(hdr), deadline, err);
    if (st != CLST_OK) {
        return st;
    }
    return frame_hdr_decode(hdr, dir, lim, out, err);
}

enum clst_status
frame_recv_name(struct ring *r, struct chan_wait *w, const struct frame_hdr *h,
                char out[static CLST_ENCLAVE_NAME_MAX + 1], uint64_t deadline, struct clst_err *err)
{
    uint8_t name[CLST_ENCLAVE_NAME_MAX];
    if (h->name_size > CLST_ENCLAVE_NAME_MAX) {
        return clst_err_set(err, CLST_E_MALFORMED, "frame: name too long");
    }
    enum clst_status st = ring_read(r, w, name, h->name_size, deadline, err);
    if (st != CLST_OK) {
        return st;
    }
    if (!frame_name_valid(name, h->name_size)) {
        return clst_err_set(err, CLST_E_MALFORMED, "frame: invalid characters in a name");
    }
    memcpy(out, name, h->name_size);
    out[h->name_size] = '\0';
    return CLST_OK;
}
