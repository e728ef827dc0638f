/*
 * Fuzz harness for the Intel DCAP quote parser (src/evidence/dcap_quote.c) and, behind it, the
 * whole tdx and sgx verification (chain, PEM, signatures, collateral).
 *
 * 1. dcap_quote_parse must never crash or read out of bounds, answers only OK, MALFORMED or LIMIT
 *    (always with a message), and what it accepts satisfies the layout's invariants.
 * 2. clst_evidence_verify runs on the same bytes as tdx and as sgx evidence, with the Intel root
 *    pinned in the binary and, when CLST_VECTORS is set (ctest sets it), the real 2025-02 TDX
 *    collateral at 2025-03-01 with every status but Revoked accepted; it must answer a known
 *    status and hand out claims exactly when it accepts.
 *
 * Seeds in tests/fuzz/corpus/dcap_quote/: the real quotes (v3, v4, v5), truncated, extended and
 * damaged variants.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cloister/crypto.h>
#include <cloister/evidence.h>

#include "evidence/dcap_int.h"

static uint8_t *
slurp(const char *dir, const char *rel, size_t *size)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, rel);
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        return NULL;
    }
    uint8_t *d = malloc(1 << 16);
    size_t n = d != NULL ? fread(d, 1, 1 << 16, f) : 0;
    fclose(f);
    *size = n;
    return d;
}

static struct clst_buf *
bundle(void)
{
    static struct clst_buf b;
    static int done;
    if (done) {
        return b.size > 0 ? &b : NULL;
    }
    done = 1;
    const char *dir = getenv("CLST_VECTORS");
    if (dir == NULL) {
        return NULL;
    }
    static const char *const files[DCAP_COLL_ITEM_COUNT] = {
        "tdx/dcap-rs/collateral-2025-02/tcbinfov3_00806f050000.json",
        "tdx/dcap-rs/collateral-2025-02/qeidentityv2_apiv4.json",
        "tdx/dcap-rs/tcb_signing_cert.pem",
        "tdx/dcap-rs/collateral-2025-02/pck_platform_crl.der",
        "tdx/dcap-rs/collateral-2025-02/intel_root_ca_crl.der",
    };
    uint8_t *data[DCAP_COLL_ITEM_COUNT] = {0};
    struct dcap_collateral c;
    memset(&c, 0, sizeof(c));
    for (size_t i = 0; i < DCAP_COLL_ITEM_COUNT; i++) {
        data[i] = slurp(dir, files[i], &c.item_size[i]);
        if (data[i] == NULL) {
            abort(); /* CLST_VECTORS set but the collateral missing: a broken tree */
        }
        c.item[i] = data[i];
    }
    clst_buf_init(&b, DCAP_COLL_MAX_SIZE);
    if (dcap_collateral_encode(&c, &b) != CLST_OK) {
        abort();
    }
    for (size_t i = 0; i < DCAP_COLL_ITEM_COUNT; i++) {
        free(data[i]);
    }
    return &b;
}

static STACK_OF(X509) *
roots(void)
{
    static STACK_OF(X509) *r;
    if (r == NULL && clst_evidence_intel_roots(&r, NULL) != CLST_OK) {
        abort();
    }
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct dcap_quote q; /* 13 KiB: not on the stack */
    struct clst_err err;

    memset(&err, 0, sizeof(err));
    enum clst_status rc = dcap_quote_parse(data, size, &q, &err);
    if (rc == CLST_OK) {
        size_t body = q.body_type == DCAP_BODY_SGX    ? DCAP_SGX_REPORT_SIZE
                      : q.body_type == DCAP_BODY_TD15 ? DCAP_TD15_BODY_SIZE
                                                      : DCAP_TD10_BODY_SIZE;
        if (size > DCAP_QUOTE_MAX_SIZE || q.quote_size > size ||
            q.trailing_size != size - q.quote_size ||
            q.signed_size != DCAP_HEADER_SIZE + (q.version == 5 ? 6u : 0u) + body ||
            q.signed_size >= q.quote_size || q.att_key_type != DCAP_ATT_KEY_ECDSA_P256 ||
            (q.version == 3) != (q.tee_type == DCAP_TEE_SGX) || q.pck_chain_size == 0 ||
            q.pck_chain_size > DCAP_CERT_DATA_MAX_SIZE || q.qe_auth_size > DCAP_QE_AUTH_MAX_SIZE ||
            q.result != &q.result_store ||
            memcmp(q.signature, data + q.signed_size + 4, DCAP_ECDSA_SIG_SIZE) != 0 ||
            memcmp(q.pck_chain, data + q.quote_size - q.pck_chain_size, q.pck_chain_size) != 0) {
            abort();
        }
    } else if ((rc != CLST_E_MALFORMED && rc != CLST_E_LIMIT) || err.msg[0] == '\0') {
        abort();
    }

    struct clst_buf *b = bundle();
    struct clst_evidence_input in;
    memset(&in, 0, sizeof(in));
    in.evidence = data;
    in.evidence_size = size;
    in.endorsements = b != NULL ? b->data : NULL;
    in.endorsements_size = b != NULL ? b->size : 0;
    in.roots = roots();
    in.at = 1740787200; /* 2025-03-01 */
    in.tcb_statuses = "UpToDate,SWHardeningNeeded,ConfigurationNeeded,"
                      "ConfigurationAndSWHardeningNeeded,OutOfDate,OutOfDateConfigurationNeeded";
    for (int k = 0; k < 2; k++) {
        json_t *claims = NULL;
        rc = clst_evidence_verify(k == 0 ? CLST_EVIDENCE_TDX : CLST_EVIDENCE_SGX, &in, &claims,
                                  &err);
        if ((rc == CLST_OK) != (claims != NULL) ||
            (rc != CLST_OK && rc != CLST_E_MALFORMED && rc != CLST_E_VERIFY &&
             rc != CLST_E_LIMIT)) {
            abort();
        }
        json_decref(claims);
    }
    return 0;
}
