/*
 * SEV-SNP certificates: the pool of candidate certificates (from the extended report's table and
 * from the endorsements), the AMD extensions of a VCEK/VLEK (AMD pub. 57230), the products and
 * their TCB_VERSION layouts. Nothing here trusts a certificate: sevsnp_verify.c chains every one
 * it uses to a pinned ARK.
 */
#include <ctype.h>
#include <limits.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "evidence/sevsnp_int.h"

/* ---- products and TCB layouts --------------------------------------------------------------- */

const char *
evidence_sevsnp_product_name(enum sevsnp_product p)
{
    switch (p) {
    case SEVSNP_PRODUCT_MILAN:
        return "Milan";
    case SEVSNP_PRODUCT_GENOA:
        return "Genoa";
    case SEVSNP_PRODUCT_TURIN:
        return "Turin";
    case SEVSNP_PRODUCT_UNKNOWN:
        break;
    }
    return NULL;
}

/* Family 19h: models 00h-0Fh are Milan, 10h-1Fh and A0h-AFh (Bergamo, Siena) are Genoa for
 * the KDS; family 1Ah models 00h-1Fh are Turin (AMD PPRs; go-sev-guest abi, KDS spec
 * "Determining the Product Name"). */
enum sevsnp_product
evidence_sevsnp_product_from_cpuid(uint8_t family, uint8_t model)
{
    if (family == 0x19) {
        if (model <= 0x0F) {
            return SEVSNP_PRODUCT_MILAN;
        }
        if ((model >= 0x10 && model <= 0x1F) || (model >= 0xA0 && model <= 0xAF)) {
            return SEVSNP_PRODUCT_GENOA;
        }
    }
    if (family == 0x1A && model <= 0x1F) {
        return SEVSNP_PRODUCT_TURIN;
    }
    return SEVSNP_PRODUCT_UNKNOWN;
}

static uint8_t
tcb_byte(uint64_t raw, unsigned i)
{
    return (uint8_t)(raw >> (8 * i));
}

bool
evidence_sevsnp_tcb_decode(enum sevsnp_product p, uint64_t raw, struct sevsnp_tcb *out)
{
    struct sevsnp_tcb t;
    memset(&t, 0, sizeof(t));
    switch (p) {
    case SEVSNP_PRODUCT_MILAN:
    case SEVSNP_PRODUCT_GENOA:
        if ((raw & UINT64_C(0x0000FFFFFFFF0000)) != 0) {
            return false;
        }
        t.bootloader = tcb_byte(raw, 0);
        t.tee = tcb_byte(raw, 1);
        t.snp = tcb_byte(raw, 6);
        t.microcode = tcb_byte(raw, 7);
        break;
    case SEVSNP_PRODUCT_TURIN:
        if ((raw & UINT64_C(0x00FFFFFF00000000)) != 0) {
            return false;
        }
        t.fmc = tcb_byte(raw, 0);
        t.bootloader = tcb_byte(raw, 1);
        t.tee = tcb_byte(raw, 2);
        t.snp = tcb_byte(raw, 3);
        t.microcode = tcb_byte(raw, 7);
        break;
    case SEVSNP_PRODUCT_UNKNOWN:
        return false;
    }
    *out = t;
    return true;
}

uint64_t
evidence_sevsnp_tcb_encode(enum sevsnp_product p, const struct sevsnp_tcb *t)
{
    if (p == SEVSNP_PRODUCT_TURIN) {
        return (uint64_t)t->fmc | ((uint64_t)t->bootloader << 8) | ((uint64_t)t->tee << 16) |
               ((uint64_t)t->snp << 24) | ((uint64_t)t->microcode << 56);
    }
    return (uint64_t)t->bootloader | ((uint64_t)t->tee << 8) | ((uint64_t)t->snp << 48) |
           ((uint64_t)t->microcode << 56);
}

/* ---- VCEK / VLEK extensions ----------------------------------------------------------------- */

/* The content octets of OID 1.3.6.1.4.1.3704.1 (AMD's SEV arc); the extensions add a suffix. */
static const uint8_t amd_arc[] = {0x2B, 0x06, 0x01, 0x04, 0x01, 0x9C, 0x78, 0x01};

enum amd_ext {
    EXT_STRUCT_VERSION = 0, /* .1 */
    EXT_PRODUCT_NAME,       /* .2 */
    EXT_BL,                 /* .3.1 */
    EXT_TEE,                /* .3.2 */
    EXT_SNP,                /* .3.3 */
    EXT_UCODE,              /* .3.8 */
    EXT_FMC,                /* .3.9 */
    EXT_HWID,               /* .4 */
    EXT_CSP_ID,             /* .5 */
    EXT_OTHER_AMD,          /* .3.4-.3.7 (reserved) and anything newer */
    EXT_COUNT,
};

static const char *const ext_names[EXT_COUNT] = {
    "structVersion", "productName", "blSPL", "teeSPL", "snpSPL",
    "ucodeSPL",      "fmcSPL",      "hwID",  "cspID",  "AMD",
};

/* Classifies an extension OID; -1 when it is not in AMD's arc. */
static int
classify(const ASN1_OBJECT *obj)
{
    const unsigned char *d = OBJ_get0_data(obj);
    size_t n = OBJ_length(obj);

    if (d == NULL || n <= sizeof(amd_arc) || memcmp(d, amd_arc, sizeof(amd_arc)) != 0) {
        return -1;
    }
    d += sizeof(amd_arc);
    n -= sizeof(amd_arc);
    if (n == 1) {
        switch (d[0]) {
        case 1:
            return EXT_STRUCT_VERSION;
        case 2:
            return EXT_PRODUCT_NAME;
        case 4:
            return EXT_HWID;
        case 5:
            return EXT_CSP_ID;
        default:
            return EXT_OTHER_AMD;
        }
    }
    if (n == 2 && d[0] == 3) {
        switch (d[1]) {
        case 1:
            return EXT_BL;
        case 2:
            return EXT_TEE;
        case 3:
            return EXT_SNP;
        case 8:
            return EXT_UCODE;
        case 9:
            return EXT_FMC;
        default:
            return EXT_OTHER_AMD;
        }
    }
    return EXT_OTHER_AMD;
}

/* A DER INTEGER in 0..255, minimally encoded, filling the whole value. */
static bool
der_u8(const uint8_t *v, size_t n, uint8_t *out)
{
    if (n == 3 && v[0] == 0x02 && v[1] == 0x01 && v[2] < 0x80) {
        *out = v[2];
        return true;
    }
    if (n == 4 && v[0] == 0x02 && v[1] == 0x02 && v[2] == 0x00 && v[3] >= 0x80) {
        *out = v[3];
        return true;
    }
    return false;
}

/* A DER IA5String of printable characters, filling the whole value. */
static bool
der_ia5(const uint8_t *v, size_t n, char *out, size_t cap)
{
    if (n < 2 || v[0] != 0x16 || v[1] >= 0x80 || (size_t)v[1] != n - 2 || n - 2 >= cap) {
        return false;
    }
    for (size_t i = 2; i < n; i++) {
        if (v[i] < 0x20 || v[i] > 0x7E) {
            return false;
        }
    }
    memcpy(out, v + 2, n - 2);
    out[n - 2] = '\0';
    return true;
}

/* The issuer's CN: "SEV-<gen>" (an ASK: the leaf is a VCEK) or "SEV-VLEK-<gen>" (an ASVK). */
static enum clst_status
issuer_role(X509 *cert, struct sevsnp_cert_info *info, struct clst_err *err)
{
    static const struct {
        const char *cn;
        enum sevsnp_signing_key role;
        enum sevsnp_product product;
    } issuers[] = {
        {"SEV-Milan", SEVSNP_KEY_VCEK, SEVSNP_PRODUCT_MILAN},
        {"SEV-Genoa", SEVSNP_KEY_VCEK, SEVSNP_PRODUCT_GENOA},
        {"SEV-Turin", SEVSNP_KEY_VCEK, SEVSNP_PRODUCT_TURIN},
        {"SEV-VLEK-Milan", SEVSNP_KEY_VLEK, SEVSNP_PRODUCT_MILAN},
        {"SEV-VLEK-Genoa", SEVSNP_KEY_VLEK, SEVSNP_PRODUCT_GENOA},
        {"SEV-VLEK-Turin", SEVSNP_KEY_VLEK, SEVSNP_PRODUCT_TURIN},
    };
    const X509_NAME *name = X509_get_issuer_name(cert);
    int idx = name != NULL ? X509_NAME_get_index_by_NID(name, NID_commonName, -1) : -1;

    if (idx < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, idx) >= 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sevsnp evidence: a certificate's issuer has no single common name; "
                            "it is not issued by an AMD ASK or ASVK");
    }
    const ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
    const unsigned char *s = cn != NULL ? ASN1_STRING_get0_data(cn) : NULL;
    int len = cn != NULL ? ASN1_STRING_length(cn) : 0;
    for (size_t i = 0; s != NULL && i < sizeof(issuers) / sizeof(issuers[0]); i++) {
        if ((size_t)len == strlen(issuers[i].cn) && memcmp(s, issuers[i].cn, (size_t)len) == 0) {
            info->role = issuers[i].role;
            info->product = issuers[i].product;
            return CLST_OK;
        }
    }
    return clst_err_set(err, CLST_E_MALFORMED,
                        "sevsnp evidence: a certificate is issued by \"%.*s\", which is not an "
                        "AMD ASK or ASVK (SEV-<product> or SEV-VLEK-<product>)",
                        len > 0 && len < 64 ? len : 0, s != NULL ? (const char *)s : "");
}

enum clst_status
evidence_sevsnp_cert_info(X509 *leaf, struct sevsnp_cert_info *out, struct clst_err *err)
{
    struct sevsnp_cert_info info;
    bool seen[EXT_COUNT] = {false};
    enum clst_status rc;

    if (leaf == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "sevsnp: no certificate given");
    }
    memset(&info, 0, sizeof(info));
    rc = issuer_role(leaf, &info, err);
    if (rc != CLST_OK) {
        return rc;
    }
    int count = X509_get_ext_count(leaf);
    for (int i = 0; i < count; i++) {
        X509_EXTENSION *ext = X509_get_ext(leaf, i);
        int kind = classify(X509_EXTENSION_get_object(ext));
        if (kind < 0) {
            continue;
        }
        if (kind != EXT_OTHER_AMD && seen[kind]) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "sevsnp evidence: the VCEK/VLEK carries the %s extension twice",
                                ext_names[kind]);
        }
        seen[kind] = true;
        const ASN1_OCTET_STRING *os = X509_EXTENSION_get_data(ext);
        const uint8_t *v = ASN1_STRING_get0_data(os);
        size_t n = (size_t)ASN1_STRING_length(os);
        bool ok = true;
        uint8_t unused = 0;
        switch (kind) {
        case EXT_STRUCT_VERSION:
            ok = der_u8(v, n, &unused);
            break;
        case EXT_PRODUCT_NAME:
            ok = der_ia5(v, n, info.product_name, sizeof(info.product_name));
            break;
        case EXT_BL:
            ok = der_u8(v, n, &info.tcb.bootloader);
            info.tcb_present |= SEVSNP_TCB_HAS_BL;
            break;
        case EXT_TEE:
            ok = der_u8(v, n, &info.tcb.tee);
            info.tcb_present |= SEVSNP_TCB_HAS_TEE;
            break;
        case EXT_SNP:
            ok = der_u8(v, n, &info.tcb.snp);
            info.tcb_present |= SEVSNP_TCB_HAS_SNP;
            break;
        case EXT_UCODE:
            ok = der_u8(v, n, &info.tcb.microcode);
            info.tcb_present |= SEVSNP_TCB_HAS_UCODE;
            break;
        case EXT_FMC:
            ok = der_u8(v, n, &info.tcb.fmc);
            info.tcb_present |= SEVSNP_TCB_HAS_FMC;
            break;
        case EXT_HWID: {
            /* The raw 64 (Turin: 8) bytes, or the same wrapped in a DER OCTET STRING. */
            size_t want = info.product == SEVSNP_PRODUCT_TURIN ? 8 : SEVSNP_CHIP_ID_SIZE;
            if (n == want + 2 && v[0] == 0x04 && v[1] == want) {
                v += 2;
                n -= 2;
            }
            ok = n == want;
            if (ok) {
                memcpy(info.hwid, v, n);
                info.hwid_size = n;
            }
            break;
        }
        case EXT_CSP_ID:
        case EXT_OTHER_AMD:
        default:
            break;
        }
        if (!ok) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "sevsnp evidence: the VCEK/VLEK's %s extension is not the value "
                                "the KDS specification defines",
                                ext_names[kind]);
        }
    }
    unsigned need =
        SEVSNP_TCB_HAS_BL | SEVSNP_TCB_HAS_TEE | SEVSNP_TCB_HAS_SNP | SEVSNP_TCB_HAS_UCODE;
    if (info.product == SEVSNP_PRODUCT_TURIN) {
        need |= SEVSNP_TCB_HAS_FMC;
    }
    if ((info.tcb_present & need) != need) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sevsnp evidence: the %s certificate lacks TCB extensions (it needs "
                            "blSPL, teeSPL, snpSPL, ucodeSPL%s)",
                            info.role == SEVSNP_KEY_VLEK ? "VLEK" : "VCEK",
                            info.product == SEVSNP_PRODUCT_TURIN ? " and fmcSPL" : "");
    }
    if (info.role == SEVSNP_KEY_VCEK && info.hwid_size == 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sevsnp evidence: the VCEK has no hwID extension");
    }
    *out = info;
    return CLST_OK;
}

/* ---- the certificate pool ------------------------------------------------------------------- */

void
evidence_sevsnp_pool_init(struct sevsnp_pool *pool)
{
    memset(pool, 0, sizeof(*pool));
    clst_buf_init(&pool->pem_der, 0);
}

void
evidence_sevsnp_pool_cleanup(struct sevsnp_pool *pool)
{
    if (pool != NULL) {
        clst_buf_cleanup(&pool->pem_der);
        pool->count = 0;
    }
}

static enum clst_status
pool_add(struct sevsnp_pool *pool, const uint8_t *der, size_t size, enum sevsnp_guid_role hint,
         struct clst_err *err)
{
    if (pool->count == SEVSNP_POOL_MAX) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "sevsnp evidence: more than %d certificates given (table and "
                            "endorsements together)",
                            SEVSNP_POOL_MAX);
    }
    if (size > SEVSNP_CERT_MAX_SIZE) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "sevsnp evidence: a certificate of %zu bytes exceeds the limit of %u",
                            size, SEVSNP_CERT_MAX_SIZE);
    }
    pool->certs[pool->count].der = der;
    pool->certs[pool->count].size = size;
    pool->certs[pool->count].hint = hint;
    pool->count++;
    return CLST_OK;
}

enum clst_status
evidence_sevsnp_pool_add_table(struct sevsnp_pool *pool, const uint8_t *table, size_t table_size,
                               const struct sevsnp_table *t, struct clst_err *err)
{
    for (size_t i = 0; i < t->count; i++) {
        const struct sevsnp_table_entry *e = &t->entries[i];
        if (e->role == SEVSNP_GUID_OTHER) {
            continue;
        }
        /* The table parser checked this; it is re-checked because the bytes are used here. */
        if ((uint64_t)e->offset + e->length > table_size) {
            return clst_err_set(err, CLST_E_INTERNAL, "sevsnp: table entry out of range");
        }
        enum clst_status rc = pool_add(pool, table + e->offset, e->length, e->role, err);
        if (rc != CLST_OK) {
            return rc;
        }
    }
    return CLST_OK;
}

static bool
looks_like_pem(const uint8_t *data, size_t size)
{
    static const char begin[] = "-----BEGIN ";
    size_t i = 0;
    while (i < size && isspace(data[i])) {
        i++;
    }
    return size - i >= sizeof(begin) - 1 && memcmp(data + i, begin, sizeof(begin) - 1) == 0;
}

static enum clst_status
add_pem(struct sevsnp_pool *pool, const uint8_t *data, size_t size, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    BIO *bio = NULL;
    char *name = NULL, *header = NULL;
    unsigned char *der = NULL;
    long der_len = 0;
    size_t blocks = 0;

    /* DER is shorter than its PEM: one allocation of `size` bytes holds every certificate, so
     * the slices handed out below never move. */
    clst_buf_cleanup(&pool->pem_der);
    clst_buf_init(&pool->pem_der, size);
    rc = clst_buf_reserve(&pool->pem_der, size);
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "out of memory");
        goto out;
    }
    ERR_clear_error();
    bio = BIO_new_mem_buf(data, (int)size);
    if (bio == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    for (;;) {
        if (PEM_read_bio(bio, &name, &header, &der, &der_len) != 1) {
            unsigned long e = ERR_peek_last_error();
            if (blocks > 0 && ERR_GET_LIB(e) == ERR_LIB_PEM &&
                ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
                break;
            }
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "sevsnp endorsements: PEM block %zu is malformed", blocks + 1);
            goto out;
        }
        blocks++;
        if (strcmp(name, "CERTIFICATE") != 0 || header == NULL || header[0] != '\0') {
            rc = clst_err_set(err, CLST_E_MALFORMED,
                              "sevsnp endorsements: PEM block %zu is \"%.40s\", not a "
                              "CERTIFICATE",
                              blocks, name);
            goto out;
        }
        if (der_len <= 0 || (unsigned long)der_len > SEVSNP_CERT_MAX_SIZE) {
            rc = clst_err_set(err, CLST_E_LIMIT,
                              "sevsnp endorsements: certificate %zu is %ld bytes; the limit is %u",
                              blocks, der_len, SEVSNP_CERT_MAX_SIZE);
            goto out;
        }
        const uint8_t *slot = pool->pem_der.data + pool->pem_der.size;
        rc = clst_buf_append(&pool->pem_der, der, (size_t)der_len);
        if (rc != CLST_OK) {
            rc = clst_err_set(err, CLST_E_INTERNAL, "sevsnp: PEM decoding overran its buffer");
            goto out;
        }
        rc = pool_add(pool, slot, (size_t)der_len, SEVSNP_GUID_OTHER, err);
        if (rc != CLST_OK) {
            goto out;
        }
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(der);
        name = header = NULL;
        der = NULL;
    }
    rc = CLST_OK;
out:
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(der);
    BIO_free(bio);
    ERR_clear_error();
    return rc;
}

/* Concatenated DER certificates: each a SEQUENCE with a definite length. */
static enum clst_status
add_der(struct sevsnp_pool *pool, const uint8_t *data, size_t size, struct clst_err *err)
{
    struct clst_cursor c = clst_cursor_make(data, size);
    size_t index = 0;

    while (!clst_cursor_empty(&c)) {
        struct clst_cursor start = c;
        uint8_t tag = 0, first = 0;
        size_t len = 0;
        index++;
        if (!clst_cursor_u8(&c, &tag) || !clst_cursor_u8(&c, &first) || tag != 0x30) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "sevsnp endorsements: certificate %zu is not a DER SEQUENCE",
                                index);
        }
        if (first < 0x80) {
            len = first;
        } else if (first >= 0x81 && first <= 0x83) {
            for (uint8_t k = 0; k < (uint8_t)(first - 0x80); k++) {
                uint8_t b = 0;
                if (!clst_cursor_u8(&c, &b)) {
                    return clst_err_set(err, CLST_E_MALFORMED,
                                        "sevsnp endorsements: certificate %zu is truncated in "
                                        "its length",
                                        index);
                }
                len = (len << 8) | b;
            }
        } else {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "sevsnp endorsements: certificate %zu has an indefinite or "
                                "oversized DER length",
                                index);
        }
        size_t header = start.left - c.left;
        if (len > SEVSNP_CERT_MAX_SIZE) {
            return clst_err_set(err, CLST_E_LIMIT,
                                "sevsnp endorsements: certificate %zu is %zu bytes; the limit is "
                                "%u",
                                index, len + header, SEVSNP_CERT_MAX_SIZE);
        }
        if (!clst_cursor_skip(&c, len)) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "sevsnp endorsements: certificate %zu is truncated (%zu of %zu "
                                "bytes)",
                                index, start.left, len + header);
        }
        enum clst_status rc = pool_add(pool, start.ptr, len + header, SEVSNP_GUID_OTHER, err);
        if (rc != CLST_OK) {
            return rc;
        }
    }
    return CLST_OK;
}

enum clst_status
evidence_sevsnp_pool_add_endorsements(struct sevsnp_pool *pool, const uint8_t *data, size_t size,
                                      struct clst_err *err)
{
    if (pool == NULL || (data == NULL && size != 0)) {
        return clst_err_set(err, CLST_E_INVAL, "sevsnp: inconsistent endorsements");
    }
    if (size == 0) {
        return CLST_OK;
    }
    if (size > SEVSNP_ENDORSEMENTS_MAX_SIZE || size > INT_MAX) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "sevsnp endorsements are %zu bytes, more than the limit of %u", size,
                            SEVSNP_ENDORSEMENTS_MAX_SIZE);
    }
    if (looks_like_pem(data, size)) {
        return add_pem(pool, data, size, err);
    }
    if (data[0] == 0x30) {
        return add_der(pool, data, size, err);
    }
    /* Otherwise a certificate table, as the host hands it to the guest. */
    struct sevsnp_table t;
    enum clst_status rc = evidence_sevsnp_table_parse(data, size, &t, err);
    if (rc != CLST_OK) {
        clst_err_prefix(err, "endorsements (neither PEM nor DER, so read as a certificate table)");
        return rc;
    }
    return evidence_sevsnp_pool_add_table(pool, data, size, &t, err);
}
