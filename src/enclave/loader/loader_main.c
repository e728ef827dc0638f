/*
 * cloister-enclave-loader: the trusted program the host starts (through its descriptor, with an
 * empty environment) for each sim enclave. It hardens itself, loads the enclave image from the
 * sealed memfd the host measured, and serves calls: src/enclave/rt.c. It is not meant to be run
 * by hand.
 *
 * It exports the enclave SDK (include/cloister/enclave.h) and the envelope format
 * (include/cloister/envelope.h) to the image through its dynamic symbol table (exports.list).
 * rt.o holds most of the SDK and is linked because main calls into it; the objects nothing in
 * the loader calls (the key pair, key release, the envelope's files, streams and readers) are
 * kept by the references below, or the static linker would leave them out.
 */
#include <cloister/enclave.h>
#include <cloister/envelope.h>

#include "enclave/enclave_int.h"

#if defined(__SANITIZE_ADDRESS__)
/*
 * Sanitizer builds (tests only) run the enclave under ASan too. Its runtime must not make system
 * calls the sandbox forbids on the normal paths: no colour probing (ioctl on stderr), no leak
 * check at exit, and crashes left to the kernel so that the host sees the real signal. A genuine
 * ASan report still prints its first lines to the host's stderr (kept open in sanitizer builds)
 * before symbolization opens /proc/self/maps and the sandbox ends it (docs/enclaves.md).
 */
const char *__asan_default_options(void);
const char *
__asan_default_options(void)
{
    return "color=never:detect_leaks=0:handle_segv=0:handle_sigbus=0:handle_sigfpe=0:"
           "handle_abort=0:symbolize=0";
}
#endif

int
main(int argc, char **argv)
{
    /* Volatile reads the optimizer cannot drop keep these objects linked. */
    static void (*volatile const keep[])(void) = {
        (void (*)(void))clst_enclave_keypair_new,   (void (*)(void))clst_enclave_key_release,
        (void (*)(void))clst_envelope_decrypt_mem,  (void (*)(void))clst_envelope_dec_new,
        (void (*)(void))clst_envelope_reader_open,  (void (*)(void))clst_envelope_header_parse,
        (void (*)(void))clst_envelope_body_dec_new, (void (*)(void))clst_envelope_provider_new,
    };
    (void)keep[0];
    return rt_main(argc, argv);
}
