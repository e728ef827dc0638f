/*
 * A PKCS#11 module for tests that stands for a failing HSM: it forwards every call to the real
 * SoftHSM2 module, except that while the file named by CLST_P11_FAULT_FILE exists, C_UnwrapKey
 * answers CKR_GENERAL_ERROR whatever it is given (the device's unwrap engine is broken). Built as
 * p11-faulty.so; used by tests/unit/vault/test_masterkey_pkcs11.c.
 */
#define _POSIX_C_SOURCE 200809L
#include <dlfcn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#define REAL_MODULE "/usr/lib/softhsm/libsofthsm2.so"

static CK_FUNCTION_LIST faulty;
static CK_FUNCTION_LIST_PTR real;

static bool
fault_on(void)
{
    const char *f = getenv("CLST_P11_FAULT_FILE");
    return f != NULL && access(f, F_OK) == 0;
}

static CK_RV
faulty_unwrap(CK_SESSION_HANDLE h, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key,
              CK_BYTE_PTR wrapped, CK_ULONG wrapped_len, CK_ATTRIBUTE_PTR tmpl, CK_ULONG count,
              CK_OBJECT_HANDLE_PTR out)
{
    if (fault_on()) {
        return CKR_GENERAL_ERROR;
    }
    return real->C_UnwrapKey(h, mech, key, wrapped, wrapped_len, tmpl, count, out);
}

__attribute__((visibility("default"))) CK_RV
C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out)
{
    if (out == NULL) {
        return CKR_ARGUMENTS_BAD;
    }
    if (real == NULL) {
        void *dl = dlopen(REAL_MODULE, RTLD_NOW | RTLD_LOCAL);
        if (dl == NULL) {
            return CKR_GENERAL_ERROR;
        }
        CK_C_GetFunctionList get = NULL;
        void *sym = dlsym(dl, "C_GetFunctionList");
        if (sym == NULL) {
            return CKR_GENERAL_ERROR;
        }
        memcpy(&get, &sym, sizeof(get));
        CK_RV rv = get(&real);
        if (rv != CKR_OK) {
            return rv;
        }
        faulty = *real;
        faulty.C_UnwrapKey = faulty_unwrap;
    }
    *out = &faulty;
    return CKR_OK;
}
