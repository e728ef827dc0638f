/*
 * Fuzz harness for the PCK certificate's SGX extension parser (DER, in src/evidence/
 * dcap_verify.c): it must never crash, answer only OK or MALFORMED (with a message), and leave
 * its output untouched on failure. Seeds in tests/fuzz/corpus/dcap_pck_extension/: the extension
 * of real PCK certificates (TDX and SGX platforms) and damaged variants.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "evidence/dcap_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct dcap_pck_info pi, before;
    struct clst_err err;
    memset(&pi, 0xA5, sizeof(pi));
    before = pi;
    memset(&err, 0, sizeof(err));
    enum clst_status rc = dcap_pck_extension_parse(data != NULL ? data : (const uint8_t *)"", size,
                                                   &pi, &err);
    if (rc != CLST_OK) {
        if (rc != CLST_E_MALFORMED || err.msg[0] == '\0' ||
            memcmp(&pi, &before, sizeof(pi)) != 0) {
            abort();
        }
    }
    return 0;
}
