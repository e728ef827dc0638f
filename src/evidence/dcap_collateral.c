/*
 * The DCAP collateral bundle: Intel's signed TCB info and QE identity, the TCB Signing chain and
 * the two CRLs, packed into the one byte string that clst_evidence_input.endorsements carries
 * (docs/evidence-dcap.md), and the loader that builds it from a collateral directory.
 *
 *   "CDCL" | u16 version = 1 | u16 count | count x { u16 type | u32 size | size bytes }
 *
 * little-endian; every type (1..5) exactly once, in any order; nothing after the last item. The
 * parser is pure: the views it returns point into the bundle. The loader reads the file system
 * (it is not part of verification; the verifier never touches files).
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "evidence/dcap_int.h"

static const uint8_t coll_magic[DCAP_COLL_MAGIC_SIZE] = {'C', 'D', 'C', 'L'};

static const struct {
    const char *file;
    size_t max;
} items[DCAP_COLL_ITEM_COUNT] = {
    {DCAP_FILE_TCB_INFO, DCAP_COLL_JSON_MAX},   {DCAP_FILE_QE_IDENTITY, DCAP_COLL_JSON_MAX},
    {DCAP_FILE_TCB_CHAIN, DCAP_COLL_CHAIN_MAX}, {DCAP_FILE_PCK_CRL, DCAP_COLL_CRL_MAX},
    {DCAP_FILE_ROOT_CRL, DCAP_COLL_CRL_MAX},
};

const char *
dcap_collateral_item_name(enum dcap_coll_item item)
{
    if (item < DCAP_COLL_TCB_INFO || item > DCAP_COLL_ROOT_CRL) {
        return "?";
    }
    return items[item - 1].file;
}

enum clst_status
dcap_collateral_parse(const uint8_t *data, size_t size, struct dcap_collateral *out,
                      struct clst_err *err)
{
    struct dcap_collateral coll;
    const uint8_t *magic = NULL;
    uint16_t version = 0, count = 0;

    if (out == NULL || (data == NULL && size != 0)) {
        return clst_err_set(err, CLST_E_INVAL, "DCAP collateral: no output or no input given");
    }
    if (size == 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "DCAP evidence needs Intel's collateral (TCB info, QE identity, TCB "
                            "signing chain, CRLs): pass a collateral directory (--collateral DIR)");
    }
    if (size > DCAP_COLL_MAX_SIZE) {
        return clst_err_set(err, CLST_E_LIMIT,
                            "DCAP collateral of %zu bytes is over the limit of %u bytes", size,
                            DCAP_COLL_MAX_SIZE);
    }
    memset(&coll, 0, sizeof(coll));
    struct clst_cursor c = clst_cursor_make(data, size);
    if (!clst_cursor_take(&c, DCAP_COLL_MAGIC_SIZE, &magic) ||
        memcmp(magic, coll_magic, sizeof(coll_magic)) != 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "DCAP collateral: not a collateral bundle (no \"CDCL\" magic); build it "
                            "from a collateral directory");
    }
    if (!clst_cursor_le16(&c, &version) || !clst_cursor_le16(&c, &count)) {
        return clst_err_set(err, CLST_E_MALFORMED, "DCAP collateral: truncated bundle header");
    }
    if (version != DCAP_COLL_VERSION) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "DCAP collateral: unknown bundle version %u (this build reads %d)",
                            (unsigned)version, DCAP_COLL_VERSION);
    }
    if (count != DCAP_COLL_ITEM_COUNT) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "DCAP collateral: the bundle holds %u items, not the %d expected",
                            (unsigned)count, DCAP_COLL_ITEM_COUNT);
    }
    for (unsigned i = 0; i < count; i++) {
        uint16_t type = 0;
        uint32_t item_size = 0;
        const uint8_t *item = NULL;
        if (!clst_cursor_le16(&c, &type) || !clst_cursor_le32(&c, &item_size)) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "DCAP collateral: truncated header of item %u", i + 1);
        }
        if (type < DCAP_COLL_TCB_INFO || type > DCAP_COLL_ROOT_CRL) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "DCAP collateral: item %u has unknown type %u", i + 1,
                                (unsigned)type);
        }
        if (coll.item[type - 1] != NULL) {
            return clst_err_set(err, CLST_E_MALFORMED, "DCAP collateral: %s appears twice",
                                items[type - 1].file);
        }
        if (item_size > items[type - 1].max) {
            return clst_err_set(err, CLST_E_LIMIT,
                                "DCAP collateral: %s of %u bytes is over its limit of %zu bytes",
                                items[type - 1].file, (unsigned)item_size, items[type - 1].max);
        }
        if (item_size == 0) {
            return clst_err_set(err, CLST_E_MALFORMED, "DCAP collateral: %s is empty",
                                items[type - 1].file);
        }
        if (!clst_cursor_take(&c, item_size, &item)) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "DCAP collateral: %s is truncated (%u bytes declared, %zu left)",
                                items[type - 1].file, (unsigned)item_size, c.left);
        }
        coll.item[type - 1] = item;
        coll.item_size[type - 1] = item_size;
    }
    if (!clst_cursor_empty(&c)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "DCAP collateral: %zu unexpected bytes after the last item", c.left);
    }
    *out = coll;
    return CLST_OK;
}

enum clst_status
dcap_collateral_encode(const struct dcap_collateral *c, struct clst_buf *out)
{
    uint8_t head[DCAP_COLL_MAGIC_SIZE + 4];
    enum clst_status rc;

    if (c == NULL || out == NULL) {
        return CLST_E_INVAL;
    }
    memcpy(head, coll_magic, sizeof(coll_magic));
    clst_put_le16(head + 4, DCAP_COLL_VERSION);
    clst_put_le16(head + 6, DCAP_COLL_ITEM_COUNT);
    if ((rc = clst_buf_append(out, head, sizeof(head))) != CLST_OK) {
        return rc;
    }
    for (size_t i = 0; i < DCAP_COLL_ITEM_COUNT; i++) {
        uint8_t ih[6];
        if (c->item[i] == NULL || c->item_size[i] > UINT32_MAX) {
            return CLST_E_INVAL;
        }
        clst_put_le16(ih, (uint16_t)(i + 1));
        clst_put_le32(ih + 2, (uint32_t)c->item_size[i]);
        if ((rc = clst_buf_append(out, ih, sizeof(ih))) != CLST_OK ||
            (rc = clst_buf_append(out, c->item[i], c->item_size[i])) != CLST_OK) {
            return rc;
        }
    }
    return CLST_OK;
}

/* Reads dir/name (at most max bytes) into a new buffer. */
static enum clst_status
read_item(const char *dir, const char *name, size_t max, struct clst_buf *out,
          struct clst_err *err)
{
    char path[4096];
    FILE *f = NULL;
    enum clst_status rc = CLST_E_IO;

    int n = snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof(path)) {
        return clst_err_set(err, CLST_E_INVAL, "collateral directory path is too long");
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        return clst_err_set(err, CLST_E_IO,
                            "cannot open %.200s: %s (a DCAP collateral directory holds %s, %s, "
                            "%s, %s and %s)",
                            path, strerror(errno), DCAP_FILE_TCB_INFO, DCAP_FILE_QE_IDENTITY,
                            DCAP_FILE_TCB_CHAIN, DCAP_FILE_PCK_CRL, DCAP_FILE_ROOT_CRL);
    }
    clst_buf_init(out, max);
    for (;;) {
        uint8_t chunk[4096];
        size_t got = fread(chunk, 1, sizeof(chunk), f);
        if (got > 0 && clst_buf_append(out, chunk, got) != CLST_OK) {
            rc = clst_err_set(err, CLST_E_LIMIT, "%.200s is larger than %zu bytes", path, max);
            goto out;
        }
        if (got < sizeof(chunk)) {
            if (ferror(f)) {
                rc = clst_err_set(err, CLST_E_IO, "cannot read %.200s", path);
                goto out;
            }
            break;
        }
    }
    if (out->size == 0) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "%.200s is empty", path);
        goto out;
    }
    rc = CLST_OK;
out:
    fclose(f);
    if (rc != CLST_OK) {
        clst_buf_cleanup(out);
    }
    return rc;
}

enum clst_status
clst_evidence_dcap_collateral_load(const char *dir, struct clst_buf *out, struct clst_err *err)
{
    struct clst_buf files[DCAP_COLL_ITEM_COUNT];
    struct dcap_collateral coll;
    enum clst_status rc = CLST_E_IO;

    memset(files, 0, sizeof(files));
    memset(&coll, 0, sizeof(coll));
    if (dir == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "no collateral directory or output given");
    }
    for (size_t i = 0; i < DCAP_COLL_ITEM_COUNT; i++) {
        rc = read_item(dir, items[i].file, items[i].max, &files[i], err);
        if (rc != CLST_OK) {
            goto out;
        }
        coll.item[i] = files[i].data;
        coll.item_size[i] = files[i].size;
    }
    size_t before = out->size;
    rc = dcap_collateral_encode(&coll, out);
    if (rc != CLST_OK) {
        out->size = before;
        rc = clst_err_set(err, rc, "cannot build the collateral bundle from %.200s", dir);
        goto out;
    }
    rc = CLST_OK;
out:
    for (size_t i = 0; i < DCAP_COLL_ITEM_COUNT; i++) {
        clst_buf_cleanup(&files[i]);
    }
    return rc;
}
