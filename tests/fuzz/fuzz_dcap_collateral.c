/*
 * Fuzz harness for the DCAP collateral bundle parser (src/evidence/dcap_collateral.c): it must
 * never crash, answer only OK, MALFORMED or LIMIT, and what it accepts is five non-empty items
 * inside the input that, with their headers, make up the input exactly; re-encoding gives the
 * same bytes when the items come in type order. Seeds in tests/fuzz/corpus/dcap_collateral/.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "evidence/dcap_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dcap_collateral c;
    struct clst_err err;
    enum clst_status rc = dcap_collateral_parse(data, size, &c, &err);
    if (rc != CLST_OK) {
        if (rc != CLST_E_MALFORMED && rc != CLST_E_LIMIT) {
            abort();
        }
        return 0;
    }
    size_t total = 8;
    for (size_t i = 0; i < DCAP_COLL_ITEM_COUNT; i++) {
        if (c.item[i] == NULL || c.item_size[i] == 0 || c.item[i] < data ||
            c.item_size[i] > size || (size_t)(c.item[i] - data) > size - c.item_size[i]) {
            abort();
        }
        total += 6 + c.item_size[i];
    }
    if (total != size) {
        abort();
    }
    struct clst_buf b;
    clst_buf_init(&b, size);
    if (dcap_collateral_encode(&c, &b) != CLST_OK || b.size != size) {
        abort();
    }
    bool ordered = true;
    for (size_t i = 1; i < DCAP_COLL_ITEM_COUNT; i++) {
        ordered = ordered && c.item[i] > c.item[i - 1];
    }
    if (ordered && memcmp(b.data, data, size) != 0) {
        abort();
    }
    clst_buf_cleanup(&b);
    return 0;
}
