/*
 * SEV-SNP evidence parsers: the ATTESTATION_REPORT (AMD pub. 56860) and the certificate table of
 * an extended report (GHCB specification, pub. 56421). Pure: no allocation, no crypto. Every
 * field is copied through the core cursor into struct sevsnp_report; reserved bytes and bits are
 * checked to be zero; version-dependent fields are read only for the versions that define them.
 *
 * Report layout (little-endian):
 *   0x000 VERSION  0x004 GUEST_SVN  0x008 POLICY  0x010 FAMILY_ID  0x020 IMAGE_ID  0x030 VMPL
 *   0x034 SIGNATURE_ALGO  0x038 CURRENT_TCB  0x040 PLATFORM_INFO  0x048 key info  0x04C reserved
 *   0x050 REPORT_DATA  0x090 MEASUREMENT  0x0C0 HOST_DATA  0x0E0 ID_KEY_DIGEST
 *   0x110 AUTHOR_KEY_DIGEST  0x140 REPORT_ID  0x160 REPORT_ID_MA  0x180 REPORTED_TCB
 *   0x188 CPUID_FAM_ID, CPUID_MOD_ID, CPUID_STEP (v3+; reserved in v2)  0x18B reserved
 *   0x1A0 CHIP_ID  0x1E0 COMMITTED_TCB  0x1E8 CURRENT build/minor/major, reserved
 *   0x1EC COMMITTED build/minor/major, reserved  0x1F0 LAUNCH_TCB
 *   0x1F8 LAUNCH_MIT_VECTOR, 0x200 CURRENT_MIT_VECTOR (v5; reserved before)  ..0x29F reserved
 *   0x2A0 SIGNATURE: R (72 bytes), S (72 bytes), 0x330..0x49F reserved
 */
#include <string.h>

#include "evidence/sevsnp_int.h"

#define OFF_POLICY        0x008
#define OFF_VMPL          0x030
#define OFF_SIG_ALGO      0x034
#define OFF_PLATFORM_INFO 0x040
#define OFF_KEY_INFO      0x048
#define OFF_RESERVED_04C  0x04C
#define OFF_CPUID         0x188
#define OFF_CHIP_ID       0x1A0
#define OFF_RESERVED_1EB  0x1EB
#define OFF_RESERVED_1EF  0x1EF
#define OFF_MIT_VECTORS   0x1F8
#define OFF_SIGNATURE     0x2A0
#define OFF_SIG_RESERVED  (OFF_SIGNATURE + 2 * SEVSNP_SIG_COMPONENT_SIZE)

#define CPUID_RESERVED_END 0x1A0
#define MIT_RESERVED_END   OFF_SIGNATURE

const uint8_t sevsnp_guid_vcek[SEVSNP_GUID_SIZE] = {0x63, 0xda, 0x75, 0x8d, 0xe6, 0x64, 0x45, 0x64,
                                                    0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd};
const uint8_t sevsnp_guid_vlek[SEVSNP_GUID_SIZE] = {0xa8, 0x07, 0x4b, 0xc2, 0xa2, 0x5a, 0x48, 0x3e,
                                                    0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1};
const uint8_t sevsnp_guid_ask[SEVSNP_GUID_SIZE] = {0x4a, 0xb7, 0xb3, 0x79, 0xbb, 0xac, 0x4f, 0xe4,
                                                   0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82};
const uint8_t sevsnp_guid_ark[SEVSNP_GUID_SIZE] = {0xc0, 0xb4, 0x06, 0xa4, 0xa8, 0x03, 0x49, 0x52,
                                                   0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae};

/* ---- report --------------------------------------------------------------------------------- */

static size_t
offset_of(const struct clst_cursor *c, size_t size)
{
    return size - c->left;
}

static enum clst_status
reserved_set(struct clst_err *err, size_t from, size_t to)
{
    return clst_err_set(err, CLST_E_MALFORMED,
                        "sevsnp evidence: reserved bytes 0x%03zx..0x%03zx of the report are not "
                        "zero; the report is corrupt or not an SEV-SNP report",
                        from, to - 1);
}

/* Consumes the reserved range [from, to) (cursor at `from`) and checks that it is zero. */
static enum clst_status
take_reserved(struct clst_cursor *c, size_t size, size_t to, struct clst_err *err)
{
    size_t from = offset_of(c, size);
    if (to < from || c->left < to - from) {
        return clst_err_set(err, CLST_E_INTERNAL, "sevsnp evidence: report cursor out of step");
    }
    if (!clst_cursor_zeros(c, to - from)) {
        return reserved_set(err, from, to);
    }
    return CLST_OK;
}

enum clst_status
evidence_sevsnp_report_parse(const uint8_t *data, size_t size, struct sevsnp_report *out,
                             struct clst_err *err)
{
    struct sevsnp_report r;
    enum clst_status rc;
    uint8_t byte = 0;

    if (out == NULL || (data == NULL && size != 0)) {
        return clst_err_set(err, CLST_E_INVAL, "sevsnp evidence: no output or no input given");
    }
    if (size != SEVSNP_REPORT_SIZE) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sevsnp evidence: an attestation report is %d bytes, not %zu; the "
                            "report is truncated or not an SEV-SNP report",
                            SEVSNP_REPORT_SIZE, size);
    }
    /* From here on every read is in range (size is exactly the layout's), but each still goes
     * through the cursor so the code reads as the table above. */
    memset(&r, 0, sizeof(r));
    struct clst_cursor c = clst_cursor_make(data, size);

    if (!clst_cursor_le32(&c, &r.version) || !clst_cursor_le32(&c, &r.guest_svn) ||
        !clst_cursor_le64(&c, &r.policy) ||
        !clst_cursor_copy(&c, r.family_id, sizeof(r.family_id)) ||
        !clst_cursor_copy(&c, r.image_id, sizeof(r.image_id)) || !clst_cursor_le32(&c, &r.vmpl) ||
        !clst_cursor_le32(&c, &r.sig_algo) || !clst_cursor_le64(&c, &r.current_tcb) ||
        !clst_cursor_le64(&c, &r.platform_info) || !clst_cursor_le32(&c, &r.key_info)) {
        return clst_err_set(err, CLST_E_INTERNAL, "sevsnp evidence: report cursor out of step");
    }
    if (r.version < SEVSNP_MIN_VERSION || r.version > SEVSNP_MAX_VERSION) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sevsnp evidence: unknown report version %u at offset 0x000 (this "
                            "build understands versions %d to %d)",
                            (unsigned)r.version, SEVSNP_MIN_VERSION, SEVSNP_MAX_VERSION);
    }
    if ((r.policy & SEVSNP_POLICY_RESERVED_ONE) == 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sevsnp evidence: POLICY bit 17 at offset 0x%03x is 0; the firmware "
                            "requires it to be 1, so this is not a genuine report",
                            OFF_POLICY);
    }
    if ((r.policy & ~SEVSNP_POLICY_DEFINED) != 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sevsnp evidence: reserved POLICY bits 0x%016llx set at offset 0x%03x",
                            (unsigned long long)(r.policy & ~SEVSNP_POLICY_DEFINED), OFF_POLICY);
    }
    if (r.vmpl > SEVSNP_MAX_VMPL) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sevsnp evidence: VMPL %u at offset 0x%03x is outside 0..%d",
                            (unsigned)r.vmpl, OFF_VMPL, SEVSNP_MAX_VMPL);
    }
    if (r.sig_algo != SEVSNP_SIG_ALGO_ES384) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sevsnp evidence: unknown signature algorithm %u at offset 0x%03x "
                            "(only %d, ECDSA P-384 with SHA-384, is defined)",
                            (unsigned)r.sig_algo, OFF_SIG_ALGO, SEVSNP_SIG_ALGO_ES384);
    }
    if ((r.platform_info & ~SEVSNP_PLATFORM_DEFINED) != 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sevsnp evidence: reserved PLATFORM_INFO bits 0x%016llx set at offset "
                            "0x%03x",
                            (unsigned long long)(r.platform_info & ~SEVSNP_PLATFORM_DEFINED),
                            OFF_PLATFORM_INFO);
    }
    if ((r.key_info & ~SEVSNP_KEYINFO_DEFINED) != 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sevsnp evidence: reserved bits 0x%08x set in the key information at "
                            "offset 0x%03x",
                            (unsigned)(r.key_info & ~SEVSNP_KEYINFO_DEFINED), OFF_KEY_INFO);
    }
    enum sevsnp_signing_key sk = sevsnp_signing_key(&r);
    if (sk != SEVSNP_KEY_VCEK && sk != SEVSNP_KEY_VLEK && sk != SEVSNP_KEY_NONE) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sevsnp evidence: SIGNING_KEY %u at offset 0x%03x is reserved (0 VCEK, "
                            "1 VLEK, 7 none)",
                            (unsigned)sk, OFF_KEY_INFO);
    }
    rc = take_reserved(&c, size, OFF_RESERVED_04C + 4, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (!clst_cursor_copy(&c, r.report_data, sizeof(r.report_data)) ||
        !clst_cursor_copy(&c, r.measurement, sizeof(r.measurement)) ||
        !clst_cursor_copy(&c, r.host_data, sizeof(r.host_data)) ||
        !clst_cursor_copy(&c, r.id_key_digest, sizeof(r.id_key_digest)) ||
        !clst_cursor_copy(&c, r.author_key_digest, sizeof(r.author_key_digest)) ||
        !clst_cursor_copy(&c, r.report_id, sizeof(r.report_id)) ||
        !clst_cursor_copy(&c, r.report_id_ma, sizeof(r.report_id_ma)) ||
        !clst_cursor_le64(&c, &r.reported_tcb)) {
        return clst_err_set(err, CLST_E_INTERNAL, "sevsnp evidence: report cursor out of step");
    }
    if (r.version >= 3) {
        if (!clst_cursor_u8(&c, &r.cpuid_family) || !clst_cursor_u8(&c, &r.cpuid_model) ||
            !clst_cursor_u8(&c, &r.cpuid_stepping)) {
            return clst_err_set(err, CLST_E_INTERNAL, "sevsnp evidence: report cursor out of step");
        }
    }
    rc = take_reserved(&c, size, CPUID_RESERVED_END, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (!clst_cursor_copy(&c, r.chip_id, sizeof(r.chip_id)) ||
        !clst_cursor_le64(&c, &r.committed_tcb) || !clst_cursor_u8(&c, &r.current_build) ||
        !clst_cursor_u8(&c, &r.current_minor) || !clst_cursor_u8(&c, &r.current_major) ||
        !clst_cursor_u8(&c, &byte)) {
        return clst_err_set(err, CLST_E_INTERNAL, "sevsnp evidence: report cursor out of step");
    }
    if (byte != 0) {
        return reserved_set(err, OFF_RESERVED_1EB, OFF_RESERVED_1EB + 1);
    }
    if (!clst_cursor_u8(&c, &r.committed_build) || !clst_cursor_u8(&c, &r.committed_minor) ||
        !clst_cursor_u8(&c, &r.committed_major) || !clst_cursor_u8(&c, &byte)) {
        return clst_err_set(err, CLST_E_INTERNAL, "sevsnp evidence: report cursor out of step");
    }
    if (byte != 0) {
        return reserved_set(err, OFF_RESERVED_1EF, OFF_RESERVED_1EF + 1);
    }
    if (!clst_cursor_le64(&c, &r.launch_tcb)) {
        return clst_err_set(err, CLST_E_INTERNAL, "sevsnp evidence: report cursor out of step");
    }
    if (r.version >= 5) {
        if (!clst_cursor_le64(&c, &r.launch_mit_vector) ||
            !clst_cursor_le64(&c, &r.current_mit_vector)) {
            return clst_err_set(err, CLST_E_INTERNAL, "sevsnp evidence: report cursor out of step");
        }
    }
    rc = take_reserved(&c, size, MIT_RESERVED_END, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (!clst_cursor_copy(&c, r.sig_r, sizeof(r.sig_r)) ||
        !clst_cursor_copy(&c, r.sig_s, sizeof(r.sig_s))) {
        return clst_err_set(err, CLST_E_INTERNAL, "sevsnp evidence: report cursor out of step");
    }
    rc = take_reserved(&c, size, SEVSNP_REPORT_SIZE, err);
    if (rc != CLST_OK) {
        return rc;
    }
    if (!clst_cursor_empty(&c)) {
        return clst_err_set(err, CLST_E_INTERNAL, "sevsnp evidence: report cursor out of step");
    }
    /* With MASK_CHIP_KEY the firmware writes zeros; anything else was not written by it. */
    if ((r.key_info & SEVSNP_KEYINFO_MASK_CHIP_KEY) != 0 &&
        !evidence_all_zero(r.chip_id, sizeof(r.chip_id))) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sevsnp evidence: MASK_CHIP_KEY is set but CHIP_ID at offset 0x%03x "
                            "is not zero",
                            OFF_CHIP_ID);
    }
    memcpy(out, &r, sizeof(r));
    return CLST_OK;
}

/* ---- certificate table ---------------------------------------------------------------------- */

static enum sevsnp_guid_role
guid_role(const uint8_t guid[SEVSNP_GUID_SIZE])
{
    if (memcmp(guid, sevsnp_guid_vcek, SEVSNP_GUID_SIZE) == 0) {
        return SEVSNP_GUID_VCEK;
    }
    if (memcmp(guid, sevsnp_guid_vlek, SEVSNP_GUID_SIZE) == 0) {
        return SEVSNP_GUID_VLEK;
    }
    if (memcmp(guid, sevsnp_guid_ask, SEVSNP_GUID_SIZE) == 0) {
        return SEVSNP_GUID_ASK;
    }
    if (memcmp(guid, sevsnp_guid_ark, SEVSNP_GUID_SIZE) == 0) {
        return SEVSNP_GUID_ARK;
    }
    return SEVSNP_GUID_OTHER;
}

enum clst_status
evidence_sevsnp_table_parse(const uint8_t *data, size_t size, struct sevsnp_table *out,
                            struct clst_err *err)
{
    struct sevsnp_table t;
    size_t order[SEVSNP_TABLE_MAX_ENTRIES];
    size_t header_end;

    if (out == NULL || (data == NULL && size != 0)) {
        return clst_err_set(err, CLST_E_INVAL, "sevsnp evidence: no output or no input given");
    }
    if (size > SEVSNP_TABLE_MAX_SIZE) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "sevsnp evidence: the certificate table is %zu bytes, more than the "
                            "limit of %u",
                            size, SEVSNP_TABLE_MAX_SIZE);
    }
    memset(&t, 0, sizeof(t));
    struct clst_cursor c = clst_cursor_make(data, size);
    for (;;) {
        struct sevsnp_table_entry e;
        memset(&e, 0, sizeof(e));
        if (!clst_cursor_copy(&c, e.guid, sizeof(e.guid)) || !clst_cursor_le32(&c, &e.offset) ||
            !clst_cursor_le32(&c, &e.length)) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "sevsnp evidence: the certificate table ends inside entry %zu "
                                "(%zu bytes); it needs an all-zero terminating entry",
                                t.count, size);
        }
        if (e.offset == 0 && e.length == 0 && evidence_all_zero(e.guid, sizeof(e.guid))) {
            break;
        }
        if (t.count == SEVSNP_TABLE_MAX_ENTRIES) {
            return clst_err_set(err, CLST_E_LIMIT,
                                "sevsnp evidence: the certificate table has more than %d entries",
                                SEVSNP_TABLE_MAX_ENTRIES);
        }
        e.role = guid_role(e.guid);
        t.entries[t.count++] = e;
    }
    header_end = size - c.left;
    for (size_t i = 0; i < t.count; i++) {
        const struct sevsnp_table_entry *e = &t.entries[i];
        if (e->length == 0) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "sevsnp evidence: certificate table entry %zu is empty", i);
        }
        if (e->length > SEVSNP_CERT_MAX_SIZE) {
            return clst_err_set(err, CLST_E_LIMIT,
                                "sevsnp evidence: certificate table entry %zu is %u bytes, more "
                                "than the limit of %u",
                                i, (unsigned)e->length, SEVSNP_CERT_MAX_SIZE);
        }
        /* 64-bit sums: offset + length cannot wrap. */
        if ((uint64_t)e->offset < header_end ||
            (uint64_t)e->offset + (uint64_t)e->length > (uint64_t)size) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "sevsnp evidence: certificate table entry %zu (offset %u, length "
                                "%u) is not inside the table's %zu bytes after its header",
                                i, (unsigned)e->offset, (unsigned)e->length, size);
        }
    }
    /* Sort by offset (insertion sort of at most 16), then walk the gaps: entries may not overlap
     * and every byte no entry covers must be zero. */
    for (size_t i = 0; i < t.count; i++) {
        size_t j = i;
        while (j > 0 && t.entries[order[j - 1]].offset > t.entries[i].offset) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    size_t pos = header_end;
    for (size_t k = 0; k < t.count; k++) {
        const struct sevsnp_table_entry *e = &t.entries[order[k]];
        if (e->offset < pos) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "sevsnp evidence: certificate table entry %zu overlaps another",
                                order[k]);
        }
        if (!evidence_all_zero(data + pos, e->offset - pos)) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "sevsnp evidence: bytes %zu..%u of the certificate table belong "
                                "to no entry and are not zero",
                                pos, (unsigned)e->offset - 1);
        }
        pos = (size_t)e->offset + e->length;
    }
    if (!evidence_all_zero(data + pos, size - pos)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sevsnp evidence: %zu bytes after the last certificate of the table "
                            "are not zero padding",
                            size - pos);
    }
    memcpy(out, &t, sizeof(t));
    return CLST_OK;
}

enum clst_status
evidence_sevsnp_parse(const uint8_t *data, size_t size, struct sevsnp_evidence *out,
                      struct clst_err *err)
{
    enum clst_status rc;

    if (out == NULL || (data == NULL && size != 0)) {
        return clst_err_set(err, CLST_E_INVAL, "sevsnp evidence: no output or no input given");
    }
    if (size > SEVSNP_EVIDENCE_MAX_SIZE) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "sevsnp evidence is %zu bytes, more than the limit of %d bytes", size,
                            SEVSNP_EVIDENCE_MAX_SIZE);
    }
    if (size < SEVSNP_REPORT_SIZE) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "sevsnp evidence is truncated: %zu bytes, but an attestation report "
                            "alone is %d",
                            size, SEVSNP_REPORT_SIZE);
    }
    rc = evidence_sevsnp_report_parse(data, SEVSNP_REPORT_SIZE, &out->report, err);
    if (rc != CLST_OK) {
        return rc;
    }
    out->has_table = size > SEVSNP_REPORT_SIZE;
    memset(&out->table, 0, sizeof(out->table));
    if (out->has_table) {
        rc = evidence_sevsnp_table_parse(data + SEVSNP_REPORT_SIZE, size - SEVSNP_REPORT_SIZE,
                                         &out->table, err);
        if (rc != CLST_OK) {
            clst_err_prefix(err, "after the %d-byte report", SEVSNP_REPORT_SIZE);
            return rc;
        }
    }
    return CLST_OK;
}

/* ---- encoders (tests, corpus) --------------------------------------------------------------- */

void
evidence_sevsnp_report_encode(const struct sevsnp_report *r, uint8_t out[static SEVSNP_REPORT_SIZE])
{
    memset(out, 0, SEVSNP_REPORT_SIZE);
    clst_put_le32(out + 0x000, r->version);
    clst_put_le32(out + 0x004, r->guest_svn);
    clst_put_le64(out + 0x008, r->policy);
    memcpy(out + 0x010, r->family_id, sizeof(r->family_id));
    memcpy(out + 0x020, r->image_id, sizeof(r->image_id));
    clst_put_le32(out + 0x030, r->vmpl);
    clst_put_le32(out + 0x034, r->sig_algo);
    clst_put_le64(out + 0x038, r->current_tcb);
    clst_put_le64(out + 0x040, r->platform_info);
    clst_put_le32(out + 0x048, r->key_info);
    memcpy(out + 0x050, r->report_data, sizeof(r->report_data));
    memcpy(out + 0x090, r->measurement, sizeof(r->measurement));
    memcpy(out + 0x0C0, r->host_data, sizeof(r->host_data));
    memcpy(out + 0x0E0, r->id_key_digest, sizeof(r->id_key_digest));
    memcpy(out + 0x110, r->author_key_digest, sizeof(r->author_key_digest));
    memcpy(out + 0x140, r->report_id, sizeof(r->report_id));
    memcpy(out + 0x160, r->report_id_ma, sizeof(r->report_id_ma));
    clst_put_le64(out + 0x180, r->reported_tcb);
    out[OFF_CPUID] = r->cpuid_family;
    out[OFF_CPUID + 1] = r->cpuid_model;
    out[OFF_CPUID + 2] = r->cpuid_stepping;
    memcpy(out + OFF_CHIP_ID, r->chip_id, sizeof(r->chip_id));
    clst_put_le64(out + 0x1E0, r->committed_tcb);
    out[0x1E8] = r->current_build;
    out[0x1E9] = r->current_minor;
    out[0x1EA] = r->current_major;
    out[0x1EC] = r->committed_build;
    out[0x1ED] = r->committed_minor;
    out[0x1EE] = r->committed_major;
    clst_put_le64(out + 0x1F0, r->launch_tcb);
    clst_put_le64(out + OFF_MIT_VECTORS, r->launch_mit_vector);
    clst_put_le64(out + OFF_MIT_VECTORS + 8, r->current_mit_vector);
    memcpy(out + OFF_SIGNATURE, r->sig_r, sizeof(r->sig_r));
    memcpy(out + OFF_SIGNATURE + SEVSNP_SIG_COMPONENT_SIZE, r->sig_s, sizeof(r->sig_s));
}

enum clst_status
evidence_sevsnp_table_encode(const enum sevsnp_guid_role *roles, const uint8_t *const *certs,
                             const size_t *sizes, size_t count, struct clst_buf *out)
{
    uint8_t entry[SEVSNP_TABLE_ENTRY_SIZE];
    size_t offset = (count + 1) * SEVSNP_TABLE_ENTRY_SIZE;
    enum clst_status rc;

    if (count > SEVSNP_TABLE_MAX_ENTRIES || out == NULL) {
        return CLST_E_INVAL;
    }
    for (size_t i = 0; i < count; i++) {
        const uint8_t *guid = NULL;
        switch (roles[i]) {
        case SEVSNP_GUID_VCEK:
            guid = sevsnp_guid_vcek;
            break;
        case SEVSNP_GUID_VLEK:
            guid = sevsnp_guid_vlek;
            break;
        case SEVSNP_GUID_ASK:
            guid = sevsnp_guid_ask;
            break;
        case SEVSNP_GUID_ARK:
            guid = sevsnp_guid_ark;
            break;
        case SEVSNP_GUID_OTHER:
            return CLST_E_INVAL;
        }
        if (guid == NULL || sizes[i] > UINT32_MAX || offset > UINT32_MAX) {
            return CLST_E_INVAL;
        }
        memcpy(entry, guid, SEVSNP_GUID_SIZE);
        clst_put_le32(entry + 16, (uint32_t)offset);
        clst_put_le32(entry + 20, (uint32_t)sizes[i]);
        rc = clst_buf_append(out, entry, sizeof(entry));
        if (rc != CLST_OK) {
            return rc;
        }
        offset += sizes[i];
    }
    memset(entry, 0, sizeof(entry));
    rc = clst_buf_append(out, entry, sizeof(entry));
    for (size_t i = 0; rc == CLST_OK && i < count; i++) {
        rc = clst_buf_append(out, certs[i], sizes[i]);
    }
    return rc;
}
