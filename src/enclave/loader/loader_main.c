/*
 * cloister-enclave-loader: the trusted program the host starts (through its descriptor, with an
 * empty environment) for each sim enclave. It hardens itself, loads the enclave image from the
 * sealed memfd the host measured, and serves calls: src/enclave/rt.c. It is not meant to be run
 * by hand.
 *
 * It exports the enclave SDK (include/cloister/enclave.h) to the image through its dynamic symbol
 * table (exports.list). rt.o holds most of the SDK and is linked because main calls into it; the
 * key-pair functions live in rt_keypair.o, which nothing in the loader calls, so one reference
 * below makes the static linker keep that object too.
 */
#include <cloister/enclave.h>

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
    /* A volatile read the optimizer cannot drop keeps rt_keypair.o linked. */
    enum clst_status (*volatile keep)(unsigned, const char *, struct clst_enclave_keypair **,
                                      struct clst_err *) = clst_enclave_keypair_new;
    (void)keep;
    return rt_main(argc, argv);
}
