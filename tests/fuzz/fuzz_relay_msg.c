/*
 * Fuzz harness for the relay messages of clst.attest and clst.release (src/enclave/relay.c): the
 * host decodes the enclave's requests (relay_attest_decode, relay_release_decode) and the enclave
 * decodes the host's replies (relay_reply_decode). Every input goes to all three decoders. They
 * must never crash or read out of bounds, return only documented statuses, and whatever they
 * accept must respect the caps and alphabets: fields lie inside the input, sizes within their
 * caps, strings NUL-terminated and in their alphabets, a re-encoding of an accepted message is
 * byte-identical to the input.
 *
 * Seeds in tests/fuzz/corpus/relay_msg/: a valid attestation request, release requests (with and
 * without version and nonce), success and failure replies, and damaged variants.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "enclave/enclave_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(bool ok)
{
    if (!ok) {
        abort();
    }
}

static bool
inside(const struct relay_field *f, const uint8_t *data, size_t size)
{
    return f->size <= size && f->p >= data && (size_t)(f->p - data) <= size - f->size;
}

static bool
status_ok(enum clst_status st)
{
    return st == CLST_OK || st == CLST_E_MALFORMED || st == CLST_E_LIMIT;
}

/* Re-encodes `count` fields and compares with the input. */
static void
same(enum relay_kind kind, const struct relay_field *f, size_t count, const uint8_t *data,
     size_t size)
{
    struct clst_buf b;
    clst_buf_init(&b, size + 1);
    check(relay_encode(kind, f, count, &b) == CLST_OK);
    check(b.size == size && memcmp(b.data, data, size) == 0);
    clst_buf_cleanup(&b);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct clst_err err;
    struct relay_attest_req a;
    struct relay_release_req r;
    struct relay_reply p;

    enum clst_status st = relay_attest_decode(data, size, &a, &err);
    check(status_ok(st));
    if (st == CLST_OK) {
        check(inside(&a.evidence, data, size) && inside(&a.runtime, data, size));
        check(a.evidence.size >= 1 && a.evidence.size <= CLST_ENCLAVE_EVIDENCE_MAX_SIZE);
        check(a.runtime.size >= 1 && a.runtime.size <= RELAY_RUNTIME_MAX);
        struct relay_field f[2] = {a.evidence, a.runtime};
        same(RELAY_ATTEST, f, 2, data, size);
    }
    st = relay_release_decode(data, size, &r, &err);
    check(status_ok(st));
    if (st == CLST_OK) {
        enum clst_enclave_wrap_alg alg;
        check(inside(&r.token, data, size));
        check(relay_key_name_ok(r.name, strlen(r.name)));
        check(relay_version_ok(r.version, strlen(r.version)));
        check(relay_token_ok(r.token.p, r.token.size));
        check(relay_nonce_ok(r.nonce, strlen(r.nonce)));
        check(clst_enclave_wrap_alg_parse(r.enc, &alg) == CLST_OK);
        struct relay_field f[5] = {{(const uint8_t *)r.name, strlen(r.name)},
                                   {(const uint8_t *)r.version, strlen(r.version)},
                                   r.token,
                                   {(const uint8_t *)r.enc, strlen(r.enc)},
                                   {(const uint8_t *)r.nonce, strlen(r.nonce)}};
        same(RELAY_RELEASE, f, 5, data, size);
    }
    st = relay_reply_decode(data, size, &p, &err);
    check(status_ok(st));
    if (st == CLST_OK) {
        check(inside(&p.body, data, size) && inside(&p.ca, data, size));
        check(p.status <= (uint32_t)CLST_E_INTERNAL);
        check(p.http == 0 || (p.http >= 100 && p.http <= 599));
        check(p.body.size >= 1 && p.body.size <= RELAY_TOKEN_MAX);
        check(p.status == CLST_OK || p.body.size <= RELAY_MSG_MAX);
        check(p.ca.size <= RELAY_CA_MAX);
        struct clst_buf b;
        clst_buf_init(&b, size + 1);
        check(relay_reply_encode((enum clst_status)p.status, p.http, p.body.p, p.body.size, p.ca.p,
                                 p.ca.size, &b) == CLST_OK);
        check(b.size == size && memcmp(b.data, data, size) == 0);
        clst_buf_cleanup(&b);
    }
    return 0;
}
