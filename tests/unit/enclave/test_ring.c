/*
 * Unit tests for src/enclave/ring.c, with both ends in this process: byte-exact transfer across
 * the wrap point, messages larger than the ring (streamed to a consumer thread), impossible
 * counters written by a hostile peer, deadlines, the liveness check, framing on top of the ring,
 * and the spin policy (never spins when only one CPU is usable).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>

#include "encl_fixture.h"

#define CAP 4096u

struct pair {
    struct ring_ctl *ctl;
    uint8_t *data;
    struct ring tx, rx;
    struct chan_wait wt, wr;
};

static void
pair_init(struct pair *p)
{
    memset(p, 0, sizeof(*p));
    p->ctl = aligned_alloc(64, sizeof(struct ring_ctl));
    p->data = malloc(CAP);
    assert_non_null(p->ctl);
    assert_non_null(p->data);
    memset(p->ctl, 0, sizeof(*p->ctl));
    ring_init(&p->tx, p->ctl, p->data, CAP, true);
    ring_init(&p->rx, p->ctl, p->data, CAP, false);
}

static void
pair_free(struct pair *p)
{
    free(p->ctl);
    free(p->data);
}

static void
test_roundtrip_and_wrap(void **state)
{
    (void)state;
    struct pair p;
    struct clst_err err = {0};
    uint8_t in[1000], out[1000];
    pair_init(&p);
    /* Odd sizes so that copies straddle the end of the buffer many times. */
    for (unsigned round = 0; round < 200; round++) {
        size_t n = 1 + (round * 37) % sizeof(in);
        for (size_t i = 0; i < n; i++) {
            in[i] = (uint8_t)(round + i * 7);
        }
        assert_int_equal(ring_write(&p.tx, &p.wt, in, n, CHAN_NO_DEADLINE, &err), CLST_OK);
        ring_publish(&p.tx);
        assert_true(ring_ready(&p.rx));
        assert_int_equal(ring_read(&p.rx, &p.wr, out, n, CHAN_NO_DEADLINE, &err), CLST_OK);
        ring_release(&p.rx);
        assert_memory_equal(in, out, n);
    }
    assert_false(ring_ready(&p.rx));
    /* Discarding reads advance without copying. */
    assert_int_equal(ring_write(&p.tx, &p.wt, in, 10, CHAN_NO_DEADLINE, &err), CLST_OK);
    ring_publish(&p.tx);
    assert_int_equal(ring_read(&p.rx, &p.wr, NULL, 10, CHAN_NO_DEADLINE, &err), CLST_OK);
    assert_false(ring_ready(&p.rx));
    pair_free(&p);
}

struct consumer {
    struct pair *p;
    size_t n;
    uint8_t *out;
    enum clst_status st;
};

static void *
consume(void *arg)
{
    struct consumer *c = arg;
    struct clst_err err = {0};
    c->st = ring_read(&c->p->rx, &c->p->wr, c->out, c->n, chan_deadline(10000), &err);
    ring_release(&c->p->rx);
    return NULL;
}

static void
test_larger_than_ring(void **state)
{
    (void)state;
    struct pair p;
    struct clst_err err = {0};
    size_t n = 10 * CAP + 123;
    uint8_t *in = malloc(n), *out = malloc(n);
    pthread_t t;
    pair_init(&p);
    assert_non_null(in);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        in[i] = (uint8_t)(i * 131 + 7);
    }
    struct consumer c = {&p, n, out, CLST_E_INTERNAL};
    assert_int_equal(pthread_create(&t, NULL, consume, &c), 0);
    assert_int_equal(ring_write(&p.tx, &p.wt, in, n, chan_deadline(10000), &err), CLST_OK);
    ring_publish(&p.tx);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(c.st, CLST_OK);
    assert_memory_equal(in, out, n);
    free(in);
    free(out);
    pair_free(&p);
}

static void
test_hostile_counters(void **state)
{
    (void)state;
    struct pair p;
    struct clst_err err = {0};
    uint8_t b[16] = {0};
    pair_init(&p);
    /* A consumer "tail" ahead of everything written. */
    atomic_store(&p.ctl->tail, 100);
    assert_int_equal(ring_write(&p.tx, &p.wt, b, 1, CHAN_NO_DEADLINE, &err), CLST_E_MALFORMED);
    assert_non_null(strstr(err.msg, "corrupted"));
    pair_free(&p);

    /* A producer "head" claiming more than the ring holds. */
    pair_init(&p);
    atomic_store(&p.ctl->head, CAP + 1);
    assert_int_equal(ring_read(&p.rx, &p.wr, b, 1, CHAN_NO_DEADLINE, &err), CLST_E_MALFORMED);
    pair_free(&p);

    /* A head that moves backwards. */
    pair_init(&p);
    assert_int_equal(ring_write(&p.tx, &p.wt, b, 8, CHAN_NO_DEADLINE, &err), CLST_OK);
    ring_publish(&p.tx);
    assert_int_equal(ring_read(&p.rx, &p.wr, b, 8, CHAN_NO_DEADLINE, &err), CLST_OK);
    atomic_store(&p.ctl->head, 4);
    assert_int_equal(ring_read(&p.rx, &p.wr, b, 1, chan_deadline(50), &err), CLST_E_MALFORMED);
    pair_free(&p);

    /* A huge value (wrapping arithmetic must not make it look valid). */
    pair_init(&p);
    atomic_store(&p.ctl->head, UINT64_MAX);
    assert_int_equal(ring_read(&p.rx, &p.wr, b, 1, CHAN_NO_DEADLINE, &err), CLST_E_MALFORMED);
    pair_free(&p);
}

static bool
dead(void *ctx)
{
    (*(int *)ctx)++;
    return false;
}

static void
test_deadline_and_liveness(void **state)
{
    (void)state;
    struct pair p;
    struct clst_err err = {0};
    uint8_t b[8];
    pair_init(&p);
    uint64_t t0 = chan_now_ns();
    assert_int_equal(ring_read(&p.rx, &p.wr, b, 1, chan_deadline(30), &err), CLST_E_LIMIT);
    assert_true(p.wr.timed_out);
    assert_true(chan_now_ns() - t0 >= 30ull * 1000 * 1000);
    assert_true(p.wr.sleeps >= 1);
    /* A full ring with nobody consuming: the writer gives up at its deadline too. */
    uint8_t *big = calloc(1, CAP + 1);
    assert_int_equal(ring_write(&p.tx, &p.wt, big, CAP + 1, chan_deadline(20), &err), CLST_E_LIMIT);
    free(big);
    pair_free(&p);

    /* The peer is reported gone after one slice instead of waiting for the deadline. */
    pair_init(&p);
    int asked = 0;
    p.wr.alive = dead;
    p.wr.alive_ctx = &asked;
    p.wr.slice_ns = 5ull * 1000 * 1000;
    assert_int_equal(ring_read(&p.rx, &p.wr, b, 1, chan_deadline(5000), &err), CLST_E_IO);
    assert_int_equal(asked, 1);
    pair_free(&p);
}

static void
test_frames(void **state)
{
    (void)state;
    struct pair p;
    struct clst_err err = {0};
    struct frame_limits lim = {.max_payload = 1000};
    struct frame_hdr h = {.type = FRAME_CALL,
                          .seq = 3,
                          .name_size = 5,
                          .payload_size = 4,
                          .aux = 10},
                     r;
    char name[CLST_ENCLAVE_NAME_MAX + 1];
    uint8_t payload[4];
    pair_init(&p);
    assert_int_equal(frame_send(&p.tx, &p.wt, &h, "hello", "abcd", CHAN_NO_DEADLINE, &err),
                     CLST_OK);
    assert_int_equal(frame_recv_hdr(&p.rx, &p.wr, FRAME_H2E, &lim, &r, CHAN_NO_DEADLINE, &err),
                     CLST_OK);
    assert_int_equal(frame_recv_name(&p.rx, &p.wr, &r, name, CHAN_NO_DEADLINE, &err), CLST_OK);
    assert_string_equal(name, "hello");
    assert_int_equal(ring_read(&p.rx, &p.wr, payload, r.payload_size, CHAN_NO_DEADLINE, &err),
                     CLST_OK);
    assert_memory_equal(payload, "abcd", 4);
    /* The same frame is not acceptable in the other direction. */
    assert_int_equal(frame_send(&p.tx, &p.wt, &h, "hello", "abcd", CHAN_NO_DEADLINE, &err),
                     CLST_OK);
    assert_int_equal(frame_recv_hdr(&p.rx, &p.wr, FRAME_E2H, &lim, &r, CHAN_NO_DEADLINE, &err),
                     CLST_E_MALFORMED);
    pair_free(&p);
    /* A name with a byte outside the alphabet. */
    pair_init(&p);
    assert_int_equal(frame_send(&p.tx, &p.wt, &h, "he lo", "abcd", CHAN_NO_DEADLINE, &err),
                     CLST_OK);
    assert_int_equal(frame_recv_hdr(&p.rx, &p.wr, FRAME_H2E, &lim, &r, CHAN_NO_DEADLINE, &err),
                     CLST_OK);
    assert_int_equal(frame_recv_name(&p.rx, &p.wr, &r, name, CHAN_NO_DEADLINE, &err),
                     CLST_E_MALFORMED);
    pair_free(&p);
}

static void
test_never_spins_on_one_cpu(void **state)
{
    (void)state;
    struct pair p;
    struct clst_err err = {0};
    uint8_t b[1];
    cpu_set_t old, one;
    assert_int_equal(sched_getaffinity(0, sizeof(old), &old), 0);
    CPU_ZERO(&one);
    CPU_SET((size_t)sched_getcpu(), &one);
    assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
    pair_init(&p);
    p.wr.spin = true;
    p.wr.spin_ns = 1000 * 1000;
    for (int i = 0; i < 5; i++) {
        assert_int_equal(ring_read(&p.rx, &p.wr, b, 1, chan_deadline(2), &err), CLST_E_LIMIT);
    }
    assert_int_equal(p.wr.spins, 0);
    assert_int_equal(p.wr.spins_skipped, 5);
    /* Where the peer last ran on our CPU, spinning is skipped too. */
    assert_int_equal(sched_setaffinity(0, sizeof(old), &old), 0);
    atomic_store(&p.ctl->producer_cpu, sched_getcpu());
    uint64_t before = p.wr.spins;
    (void)ring_read(&p.rx, &p.wr, b, 1, chan_deadline(2), &err);
    /* The CPU may change between the two reads of it; when it did not, no spin happened. */
    if (sched_getcpu() == atomic_load(&p.ctl->producer_cpu)) {
        assert_int_equal(p.wr.spins, before);
    }
    /* With two usable CPUs and the peer elsewhere, the spin mode does spin. */
    if (CPU_COUNT(&old) >= 2) {
        atomic_store(&p.ctl->producer_cpu, -1);
        (void)ring_read(&p.rx, &p.wr, b, 1, chan_deadline(5), &err);
        assert_true(p.wr.spins >= 1);
    }
    pair_free(&p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_and_wrap),
        cmocka_unit_test(test_larger_than_ring),
        cmocka_unit_test(test_hostile_counters),
        cmocka_unit_test(test_deadline_and_liveness),
        cmocka_unit_test(test_frames),
        cmocka_unit_test(test_never_spins_on_one_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
