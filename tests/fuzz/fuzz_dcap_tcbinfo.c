/*
 * Fuzz harness for the signed collateral JSON of src/evidence/dcap_json.c: the raw-member split
 * (for "tcbInfo" and "enclaveIdentity") and the tcbInfo and enclaveIdentity parsers, run both on
 * the split-out member and on the whole input.
 *
 * They must never crash, answer only OK, MALFORMED or LIMIT, and what they accept satisfies the
 * caps and the pool bookkeeping. Seeds in tests/fuzz/corpus/dcap_tcbinfo/: Intel's real TCB info
 * (v2, v3, SGX, TDX) and QE identities, their bare members, and damaged variants.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "evidence/dcap_int.h"

static void
check_pool(const struct dcap_advisory_pool *p, size_t first, size_t count)
{
    if (first > p->count || count > p->count - first) {
        abort();
    }
    for (size_t i = first; i < first + count; i++) {
        size_t n = strlen(p->id[i]);
        if (n == 0 || n >= DCAP_ADVISORY_ID_SIZE) {
            abort();
        }
    }
}

static void
tcb_info(const uint8_t *d, size_t n, struct dcap_tcb_info *t)
{
    struct clst_err err;
    enum clst_status rc = dcap_tcb_info_parse(d, n, t, &err);
    if (rc == CLST_OK) {
        if (t->level_count == 0 || t->level_count > DCAP_MAX_TCB_LEVELS ||
            t->module_count > DCAP_MAX_MODULES || (t->version != 2 && t->version != 3) ||
            t->adv.count > DCAP_MAX_ADVISORY_POOL) {
            abort();
        }
        for (size_t i = 0; i < t->level_count; i++) {
            if ((unsigned)t->level[i].status >= DCAP_TCB_STATUS_COUNT) {
                abort();
            }
            check_pool(&t->adv, t->level[i].adv_first, t->level[i].adv_count);
        }
        for (size_t m = 0; m < t->module_count; m++) {
            if (t->module[m].level_count == 0 ||
                t->module[m].level_count > DCAP_MAX_MODULE_LEVELS) {
                abort();
            }
        }
    } else if (rc != CLST_E_MALFORMED && rc != CLST_E_LIMIT) {
        abort();
    }
}

static void
qe_identity(const uint8_t *d, size_t n, struct dcap_qe_identity *q)
{
    struct clst_err err;
    enum clst_status rc = dcap_qe_identity_parse(d, n, q, &err);
    if (rc == CLST_OK) {
        if (q->level_count == 0 || q->level_count > DCAP_MAX_QE_LEVELS) {
            abort();
        }
        for (size_t i = 0; i < q->level_count; i++) {
            check_pool(&q->adv, q->level[i].adv_first, q->level[i].adv_count);
        }
    } else if (rc != CLST_E_MALFORMED && rc != CLST_E_LIMIT) {
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct dcap_tcb_info t; /* large: not on the stack */
    static struct dcap_qe_identity q;
    static const char *const members[2] = {"tcbInfo", "enclaveIdentity"};
    struct clst_err err;

    for (int k = 0; k < 2; k++) {
        size_t off = 0, len = 0;
        uint8_t sig[DCAP_ECDSA_SIG_SIZE];
        enum clst_status rc = dcap_signed_json_split(data, size, members[k], &off, &len, sig, &err);
        if (rc == CLST_OK) {
            if (off > size || len > size - off || len < 2 || data[off] != '{' ||
                data[off + len - 1] != '}') {
                abort();
            }
            if (k == 0) {
                tcb_info(data + off, len, &t);
            } else {
                qe_identity(data + off, len, &q);
            }
        } else if (rc != CLST_E_MALFORMED && rc != CLST_E_LIMIT) {
            abort();
        }
    }
    tcb_info(data, size, &t);
    qe_identity(data, size, &q);
    return 0;
}
