/*
 * The PKCS#11 master-key provider (include/cloister/vault_hsm.h): the master key is an AES-256
 * key that never leaves the HSM; object keys are wrapped and unwrapped inside it with
 * CKM_AES_KEY_WRAP_PAD (RFC 5649, the same construction as the file provider's AES-KWP).
 *
 * Why C_WrapKey/C_UnwrapKey rather than C_Encrypt with AES-GCM: key wrapping is what the
 * master key is for, so the key carries CKA_WRAP/CKA_UNWRAP and nothing else (no CKA_ENCRYPT,
 * CKA_DECRYPT, CKA_SIGN, CKA_DERIVE: it is used with one construction only, never with ECB, CBC
 * or GCM; note that whoever holds the PIN can still wrap and unwrap through it, which is what
 * the PIN is for), the blob has the same shape as the file provider's (RFC 5649), KWP's
 * integrity check rejects altered blobs, and no IV has to be chosen by the host (PKCS#11 2.40's
 * CK_GCM_PARAMS also differs between modules in how the IV length is given). The cost is one extra
 * object per call (the object key imported as, or unwrapped to, a session object that is destroyed
 * before the call returns).
 *
 * Trust boundary: the module is code we load into the process (dlopen) and trust like a
 * library; what it returns is still checked (lengths against our buffers, the key's attributes).
 */
#define _POSIX_C_SOURCE 200809L /* dlopen, O_CLOEXEC, O_NOFOLLOW, PATH_MAX */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include <cloister/crypto.h>
#include <cloister/vault_hsm.h>

#define KEY_SIZE        32 /* AES-256 */
#define KEY_ID_SIZE     16 /* CKA_ID chosen when we create the key */
#define WRAP_INPUT_MAX  64 /* largest key we wrap (object keys are 32 bytes) */
#define POOL_MAX        16 /* idle sessions kept; more are opened on demand and closed after */
#define SLOTS_MAX       64
#define MODULES_MAX     4
#define PIN_FILE_MAX    (CLST_PKCS11_PIN_MAX + 2)
#define ID_PREFIX       "pkcs11:"
#define LABELS_LIST_MAX 160

/*
 * C_Initialize and C_Finalize act on the whole process, not on one caller: two providers over the
 * same module (two vaults in one process, or a test that opens one while another is open) must
 * not finalize each other. This small registry counts the users of each loaded module; it is the
 * one piece of process-wide state here, and it is guarded by its own mutex.
 */
struct module {
    CK_FUNCTION_LIST_PTR fl; /* NULL = free entry */
    void *dl;
    unsigned refs;
    bool we_initialized;
};
static pthread_mutex_t modules_lock = PTHREAD_MUTEX_INITIALIZER;
static struct module modules[MODULES_MAX];

struct p11 {
    struct module *mod;
    CK_FUNCTION_LIST_PTR fl;
    CK_SLOT_ID slot;
    CK_OBJECT_HANDLE key;
    /* The login state of a token belongs to the application and ends when its last session
     * closes: this session stays open for the provider's life so that it never does. */
    CK_SESSION_HANDLE login_session;
    bool have_login_session;
    pthread_mutex_t lock;
    CK_SESSION_HANDLE pool[POOL_MAX];
    size_t pool_count;
    char token_label[CLST_PKCS11_LABEL_MAX + 1];
};

/* ---- messages ------------------------------------------------------------------------------- */

static const char *
rv_name(CK_RV rv)
{
    switch (rv) {
    case CKR_OK:
        return "CKR_OK";
    case CKR_HOST_MEMORY:
        return "CKR_HOST_MEMORY";
    case CKR_GENERAL_ERROR:
        return "CKR_GENERAL_ERROR";
    case CKR_FUNCTION_FAILED:
        return "CKR_FUNCTION_FAILED";
    case CKR_ARGUMENTS_BAD:
        return "CKR_ARGUMENTS_BAD";
    case CKR_ATTRIBUTE_SENSITIVE:
        return "CKR_ATTRIBUTE_SENSITIVE";
    case CKR_ATTRIBUTE_TYPE_INVALID:
        return "CKR_ATTRIBUTE_TYPE_INVALID";
    case CKR_ATTRIBUTE_VALUE_INVALID:
        return "CKR_ATTRIBUTE_VALUE_INVALID";
    case CKR_DEVICE_ERROR:
        return "CKR_DEVICE_ERROR";
    case CKR_DEVICE_MEMORY:
        return "CKR_DEVICE_MEMORY";
    case CKR_DEVICE_REMOVED:
        return "CKR_DEVICE_REMOVED";
    case CKR_ENCRYPTED_DATA_INVALID:
        return "CKR_ENCRYPTED_DATA_INVALID";
    case CKR_ENCRYPTED_DATA_LEN_RANGE:
        return "CKR_ENCRYPTED_DATA_LEN_RANGE";
    case CKR_KEY_HANDLE_INVALID:
        return "CKR_KEY_HANDLE_INVALID";
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
        return "CKR_KEY_FUNCTION_NOT_PERMITTED";
    case CKR_KEY_NOT_WRAPPABLE:
        return "CKR_KEY_NOT_WRAPPABLE";
    case CKR_KEY_UNEXTRACTABLE:
        return "CKR_KEY_UNEXTRACTABLE";
    case CKR_MECHANISM_INVALID:
        return "CKR_MECHANISM_INVALID";
    case CKR_MECHANISM_PARAM_INVALID:
        return "CKR_MECHANISM_PARAM_INVALID";
    case CKR_OBJECT_HANDLE_INVALID:
        return "CKR_OBJECT_HANDLE_INVALID";
    case CKR_PIN_INCORRECT:
        return "CKR_PIN_INCORRECT";
    case CKR_PIN_LEN_RANGE:
        return "CKR_PIN_LEN_RANGE";
    case CKR_PIN_LOCKED:
        return "CKR_PIN_LOCKED";
    case CKR_SESSION_CLOSED:
        return "CKR_SESSION_CLOSED";
    case CKR_SESSION_COUNT:
        return "CKR_SESSION_COUNT";
    case CKR_SESSION_HANDLE_INVALID:
        return "CKR_SESSION_HANDLE_INVALID";
    case CKR_SLOT_ID_INVALID:
        return "CKR_SLOT_ID_INVALID";
    case CKR_TEMPLATE_INCOMPLETE:
        return "CKR_TEMPLATE_INCOMPLETE";
    case CKR_TEMPLATE_INCONSISTENT:
        return "CKR_TEMPLATE_INCONSISTENT";
    case CKR_TOKEN_NOT_PRESENT:
        return "CKR_TOKEN_NOT_PRESENT";
    case CKR_TOKEN_NOT_RECOGNIZED:
        return "CKR_TOKEN_NOT_RECOGNIZED";
    case CKR_TOKEN_WRITE_PROTECTED:
        return "CKR_TOKEN_WRITE_PROTECTED";
    case CKR_USER_NOT_LOGGED_IN:
        return "CKR_USER_NOT_LOGGED_IN";
    case CKR_USER_PIN_NOT_INITIALIZED:
        return "CKR_USER_PIN_NOT_INITIALIZED";
    case CKR_USER_TYPE_INVALID:
        return "CKR_USER_TYPE_INVALID";
    case CKR_WRAPPED_KEY_INVALID:
        return "CKR_WRAPPED_KEY_INVALID";
    case CKR_WRAPPED_KEY_LEN_RANGE:
        return "CKR_WRAPPED_KEY_LEN_RANGE";
    case CKR_WRAPPING_KEY_HANDLE_INVALID:
        return "CKR_WRAPPING_KEY_HANDLE_INVALID";
    case CKR_BUFFER_TOO_SMALL:
        return "CKR_BUFFER_TOO_SMALL";
    case CKR_CRYPTOKI_NOT_INITIALIZED:
        return "CKR_CRYPTOKI_NOT_INITIALIZED";
    case CKR_CRYPTOKI_ALREADY_INITIALIZED:
        return "CKR_CRYPTOKI_ALREADY_INITIALIZED";
    default:
        return "a PKCS#11 error";
    }
}

/* A failure of the HSM itself (as opposed to a bad blob): the status callers see. */
static enum clst_status
hsm_fail(struct clst_err *err, CK_RV rv, const char *doing)
{
    return clst_err_set(err, rv == CKR_HOST_MEMORY ? CLST_E_NOMEM : CLST_E_IO,
                        "HSM: %s failed: %s (0x%lx); check that the HSM is reachable and the token "
                        "present, then restart",
                        doing, rv_name(rv), (unsigned long)rv);
}

/* Errors after which a session is not reused. */
static bool
session_broken(CK_RV rv)
{
    return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
           rv == CKR_DEVICE_REMOVED || rv == CKR_DEVICE_ERROR || rv == CKR_TOKEN_NOT_PRESENT ||
           rv == CKR_GENERAL_ERROR || rv == CKR_CRYPTOKI_NOT_INITIALIZED;
}

/* ---- module loading ------------------------------------------------------------------------- */

static void
module_unref(struct module *m)
{
    if (m == NULL) {
        return;
    }
    pthread_mutex_lock(&modules_lock);
    if (m->refs > 0 && --m->refs == 0) {
        if (m->we_initialized) {
            (void)m->fl->C_Finalize(NULL);
        }
        dlclose(m->dl);
        memset(m, 0, sizeof(*m));
    }
    pthread_mutex_unlock(&modules_lock);
}

static enum clst_status
module_load(const char *path, struct module **out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    struct stat st;
    void *dl = NULL;
    void *sym = NULL;
    CK_C_GetFunctionList get_list = NULL;
    CK_FUNCTION_LIST_PTR fl = NULL;
    struct module *m = NULL;

    if (stat(path, &st) != 0) {
        return clst_err_set(err, errno == ENOENT ? CLST_E_NOTFOUND : CLST_E_IO,
                            "PKCS#11 module %s: %s; check --pkcs11-module (for SoftHSM2: "
                            "/usr/lib/softhsm/libsofthsm2.so)",
                            path, strerror(errno));
    }
    if (!S_ISREG(st.st_mode)) {
        return clst_err_set(err, CLST_E_INVAL, "PKCS#11 module %s is not a regular file", path);
    }
    if ((st.st_mode & 002) != 0) {
        return clst_err_set(err, CLST_E_DENIED,
                            "PKCS#11 module %s is writable by any user (mode %04o); code loaded "
                            "into the vault must not be: fix its permissions",
                            path, (unsigned)(st.st_mode & 07777));
    }
    dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (dl == NULL) {
        const char *why = dlerror();
        return clst_err_set(err, CLST_E_IO, "cannot load PKCS#11 module %s: %s", path,
                            why != NULL ? why : "unknown error");
    }
    sym = dlsym(dl, "C_GetFunctionList");
    if (sym == NULL) {
        rc = clst_err_set(err, CLST_E_INVAL,
                          "%s is not a PKCS#11 module (it has no C_GetFunctionList)", path);
        goto out;
    }
    /* ISO C has no conversion from an object pointer to a function pointer; POSIX guarantees
     * the representation is the same, so copy the bits. */
    memcpy(&get_list, &sym, sizeof(get_list));
    CK_RV rv = get_list(&fl);
    if (rv != CKR_OK || fl == NULL || fl->C_Initialize == NULL) {
        rc = clst_err_set(err, CLST_E_IO, "PKCS#11 module %s: C_GetFunctionList failed: %s", path,
                          rv_name(rv));
        goto out;
    }
    if (fl->version.major != 2) {
        rc = clst_err_set(err, CLST_E_INVAL,
                          "PKCS#11 module %s implements Cryptoki %u.%u; this build speaks 2.x",
                          path, (unsigned)fl->version.major, (unsigned)fl->version.minor);
        goto out;
    }

    pthread_mutex_lock(&modules_lock);
    for (size_t i = 0; i < MODULES_MAX && m == NULL; i++) {
        if (modules[i].fl == fl) {
            m = &modules[i];
        }
    }
    if (m != NULL) {
        m->refs++;
        pthread_mutex_unlock(&modules_lock);
        dlclose(dl); /* the entry holds its own handle on the same library */
        dl = NULL;
        *out = m;
        return CLST_OK;
    }
    for (size_t i = 0; i < MODULES_MAX && m == NULL; i++) {
        if (modules[i].fl == NULL) {
            m = &modules[i];
        }
    }
    if (m == NULL) {
        pthread_mutex_unlock(&modules_lock);
        rc = clst_err_set(err, CLST_E_LIMIT, "too many PKCS#11 modules loaded (at most %d)",
                          MODULES_MAX);
        goto out;
    }
    CK_C_INITIALIZE_ARGS args;
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK; /* we call from several threads; the module locks itself */
    rv = fl->C_Initialize(&args);
    if (rv != CKR_OK && rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        pthread_mutex_unlock(&modules_lock);
        m = NULL;
        rc = clst_err_set(err, CLST_E_IO, "PKCS#11 module %s failed to initialize: %s (0x%lx)%s",
                          path, rv_name(rv), (unsigned long)rv,
                          strstr(path, "softhsm") != NULL
                              ? "; for SoftHSM2 check SOFTHSM2_CONF and its tokens directory"
                              : "");
        goto out;
    }
    m->fl = fl;
    m->dl = dl;
    m->refs = 1;
    /* Someone else in the process initialized it (outside this registry): theirs to finalize. */
    m->we_initialized = rv == CKR_OK;
    pthread_mutex_unlock(&modules_lock);
    dl = NULL;
    *out = m;
    rc = CLST_OK;
out:
    if (dl != NULL) {
        dlclose(dl);
    }
    return rc;
}

/* ---- the PIN file --------------------------------------------------------------------------- */

/* Reads the PIN into pin (NUL-terminated), after checking the file like a key file. */
static enum clst_status
pin_read(const char *path, char pin[static PIN_FILE_MAX + 1], size_t *out_len, struct clst_err *err)
{
    enum clst_status rc = CLST_E_IO;
    struct stat st;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        return clst_err_set(err, errno == ENOENT ? CLST_E_NOTFOUND : CLST_E_IO,
                            "cannot open the PKCS#11 PIN file %s: %s", path, strerror(errno));
    }
    if (fstat(fd, &st) != 0) {
        rc = clst_err_set(err, CLST_E_IO, "cannot stat the PIN file %s: %s", path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = clst_err_set(err, CLST_E_INVAL, "the PIN file %s is not a regular file", path);
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        rc = clst_err_set(err, CLST_E_DENIED,
                          "the PIN file %s can be accessed by group or others (mode %04o); "
                          "restrict it with `chmod 600 %s`, and change the PIN if others could "
                          "read it",
                          path, (unsigned)(st.st_mode & 07777), path);
        goto out;
    }
    if (st.st_uid != geteuid() && st.st_uid != 0) {
        rc = clst_err_set(err, CLST_E_DENIED,
                          "the PIN file %s belongs to uid %u, not to this user (uid %u) or root",
                          path, (unsigned)st.st_uid, (unsigned)geteuid());
        goto out;
    }
    for (;;) {
        if (got == PIN_FILE_MAX + 1) {
            rc = clst_err_set(err, CLST_E_LIMIT, "the PIN in %s is longer than %d bytes", path,
                              CLST_PKCS11_PIN_MAX);
            goto out;
        }
        ssize_t n = read(fd, pin + got, PIN_FILE_MAX + 1 - got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            rc = clst_err_set(err, CLST_E_IO, "cannot read the PIN file %s: %s", path,
                              strerror(errno));
            goto out;
        }
        if (n == 0) {
            break;
        }
        got += (size_t)n;
    }
    /* One trailing newline (as `echo` writes it), LF or CRLF; nothing else is trimmed. */
    if (got > 0 && pin[got - 1] == '\n') {
        got--;
        if (got > 0 && pin[got - 1] == '\r') {
            got--;
        }
    }
    if (got == 0) {
        rc = clst_err_set(err, CLST_E_INVAL, "the PIN file %s is empty", path);
        goto out;
    }
    if (got > CLST_PKCS11_PIN_MAX) {
        rc = clst_err_set(err, CLST_E_LIMIT, "the PIN in %s is longer than %d bytes", path,
                          CLST_PKCS11_PIN_MAX);
        goto out;
    }
    if (memchr(pin, '\0', got) != NULL || memchr(pin, '\n', got) != NULL) {
        rc = clst_err_set(err, CLST_E_INVAL,
                          "the PIN file %s holds more than one line (or a NUL byte); it must "
                          "hold the PIN only",
                          path);
        goto out;
    }
    pin[got] = '\0';
    *out_len = got;
    rc = CLST_OK;
out:
    if (rc != CLST_OK) {
        clst_wipe(pin, PIN_FILE_MAX + 1);
    }
    close(fd);
    return rc;
}

/* ---- sessions ------------------------------------------------------------------------------- */

static enum clst_status
session_get(struct p11 *p, CK_SESSION_HANDLE *out, struct clst_err *err)
{
    pthread_mutex_lock(&p->lock);
    if (p->pool_count > 0) {
        *out = p->pool[--p->pool_count];
        pthread_mutex_unlock(&p->lock);
        return CLST_OK;
    }
    pthread_mutex_unlock(&p->lock);
    CK_RV rv = p->fl->C_OpenSession(p->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, out);
    if (rv != CKR_OK) {
        return hsm_fail(err, rv, "opening a session");
    }
    return CLST_OK;
}

static void
session_put(struct p11 *p, CK_SESSION_HANDLE h, CK_RV last)
{
    if (!session_broken(last)) {
        pthread_mutex_lock(&p->lock);
        if (p->pool_count < POOL_MAX) {
            p->pool[p->pool_count++] = h;
            pthread_mutex_unlock(&p->lock);
            return;
        }
        pthread_mutex_unlock(&p->lock);
    }
    (void)p->fl->C_CloseSession(h);
}

/* Ends a wrap or unwrap: destroys its session object `obj` (if any), then gives the session back
 * (closed instead when `last`, or the destroy, says the session is broken). */
static void
session_end(struct p11 *p, CK_SESSION_HANDLE h, CK_OBJECT_HANDLE obj, CK_RV last)
{
    if (obj != CK_INVALID_HANDLE) {
        CK_RV rv = p->fl->C_DestroyObject(h, obj);
        if (last == CKR_OK) {
            last = rv;
        }
    }
    session_put(p, h, last);
}

/* ---- wrap and unwrap ------------------------------------------------------------------------ */

static CK_OBJECT_CLASS secret_class = CKO_SECRET_KEY;
static CK_KEY_TYPE generic_type = CKK_GENERIC_SECRET;
static CK_BBOOL ck_true = CK_TRUE;
static CK_BBOOL ck_false = CK_FALSE;

static enum clst_status
p11_wrap(void *ctx, const uint8_t *key, size_t key_size, uint8_t *out, size_t out_cap,
         size_t *out_size, struct clst_err *err)
{
    struct p11 *p = ctx;
    enum clst_status rc = CLST_E_INTERNAL;
    uint8_t value[WRAP_INPUT_MAX];
    uint8_t blob[CLST_VAULT_WRAPPED_MAX];
    CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
    CK_RV rv = CKR_OK;
    bool have_session = false;

    if (key_size == 0 || key_size > sizeof(value)) {
        return clst_err_set(err, CLST_E_INVAL, "HSM wrap: a key of %zu bytes (1..%d supported)",
                            key_size, WRAP_INPUT_MAX);
    }
    /* The module takes non-const pointers: give it a copy rather than cast away const. */
    memcpy(value, key, key_size);
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &secret_class, sizeof(secret_class)},
        {CKA_KEY_TYPE, &generic_type, sizeof(generic_type)},
        {CKA_TOKEN, &ck_false, sizeof(ck_false)},
        {CKA_PRIVATE, &ck_true, sizeof(ck_true)},
        {CKA_SENSITIVE, &ck_false, sizeof(ck_false)},
        {CKA_EXTRACTABLE, &ck_true, sizeof(ck_true)},
        {CKA_VALUE, value, (CK_ULONG)key_size},
    };
    CK_MECHANISM mech = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    CK_ULONG len = (CK_ULONG)sizeof(blob);

    rc = session_get(p, &h, err);
    if (rc != CLST_OK) {
        goto out;
    }
    have_session = true;
    rv = p->fl->C_CreateObject(h, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &obj);
    if (rv != CKR_OK) {
        obj = CK_INVALID_HANDLE;
        rc = hsm_fail(err, rv, "importing a key to wrap (C_CreateObject)");
        goto out;
    }
    rv = p->fl->C_WrapKey(h, &mech, p->key, obj, blob, &len);
    if (rv != CKR_OK) {
        rc = hsm_fail(err, rv, "wrapping a key under the master key (C_WrapKey)");
        goto out;
    }
    if (len == 0 || len > sizeof(blob)) {
        rc = clst_err_set(err, CLST_E_INTERNAL, "HSM: C_WrapKey returned %lu bytes",
                          (unsigned long)len);
        goto out;
    }
    if (len > out_cap) {
        rc = clst_err_set(err, CLST_E_LIMIT, "HSM wrap: the wrapped key (%lu bytes) does not fit",
                          (unsigned long)len);
        goto out;
    }
    memcpy(out, blob, len);
    *out_size = len;
    rc = CLST_OK;
out:
    if (have_session) {
        session_end(p, h, obj, rv);
    }
    clst_wipe(value, sizeof(value));
    return rc;
}

/* The answers of C_UnwrapKey that mean "this blob was not made by this key, or was altered". */
static bool
blob_rejected(CK_RV rv)
{
    return rv == CKR_WRAPPED_KEY_INVALID || rv == CKR_WRAPPED_KEY_LEN_RANGE ||
           rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_ENCRYPTED_DATA_LEN_RANGE;
}

static enum clst_status unwrap_with(struct p11 *p, const uint8_t *blob, size_t blob_size,
                                    uint8_t *out, size_t out_cap, size_t *out_size, bool probing,
                                    struct clst_err *err);

/*
 * SoftHSM2 answers CKR_GENERAL_ERROR when the RFC 5649 integrity check fails, and so may a
 * device that has failed. Tell them apart: wrap a fresh test value and unwrap it. When that
 * works the HSM is sound and the blob was the problem.
 */
static bool
hsm_unwraps_own_blob(struct p11 *p)
{
    static const uint8_t probe[32] = {'c', 'l', 'o', 'i', 's', 't', 'e', 'r', '-',
                                      'h', 's', 'm', '-', 'p', 'r', 'o', 'b', 'e'};
    uint8_t blob[CLST_VAULT_WRAPPED_MAX], back[sizeof(probe)];
    size_t blob_size = 0, back_size = 0;
    bool ok = p11_wrap(p, probe, sizeof(probe), blob, sizeof(blob), &blob_size, NULL) ==
                  CLST_OK &&
              unwrap_with(p, blob, blob_size, back, sizeof(back), &back_size, true, NULL) ==
                  CLST_OK &&
              back_size == sizeof(probe) && memcmp(back, probe, sizeof(probe)) == 0;
    clst_wipe(back, sizeof(back));
    return ok;
}

static enum clst_status
p11_unwrap(void *ctx, const uint8_t *blob, size_t blob_size, uint8_t *out, size_t out_cap,
           size_t *out_size, struct clst_err *err)
{
    return unwrap_with(ctx, blob, blob_size, out, out_cap, out_size, false, err);
}

/* probing: unwrapping the test blob of hsm_unwraps_own_blob (no second probe). */
static enum clst_status
unwrap_with(struct p11 *p, const uint8_t *blob, size_t blob_size, uint8_t *out, size_t out_cap,
            size_t *out_size, bool probing, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    uint8_t in[CLST_VAULT_WRAPPED_MAX];
    uint8_t value[WRAP_INPUT_MAX];
    CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE obj = CK_INVALID_HANDLE;
    CK_RV rv = CKR_OK;
    bool have_session = false;

    /* RFC 5649 blobs are whole 64-bit blocks, at least two of them. */
    if (blob_size < 16 || blob_size > sizeof(in) || blob_size % 8 != 0) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "the wrapped key (%zu bytes) cannot come from this master key",
                            blob_size);
    }
    memcpy(in, blob, blob_size);
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &secret_class, sizeof(secret_class)},
        {CKA_KEY_TYPE, &generic_type, sizeof(generic_type)},
        {CKA_TOKEN, &ck_false, sizeof(ck_false)},
        {CKA_PRIVATE, &ck_true, sizeof(ck_true)},
        {CKA_SENSITIVE, &ck_false, sizeof(ck_false)},
        {CKA_EXTRACTABLE, &ck_true, sizeof(ck_true)},
    };
    CK_MECHANISM mech = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    CK_ATTRIBUTE get = {CKA_VALUE, value, (CK_ULONG)sizeof(value)};

    rc = session_get(p, &h, err);
    if (rc != CLST_OK) {
        goto out;
    }
    have_session = true;
    rv = p->fl->C_UnwrapKey(h, &mech, p->key, in, (CK_ULONG)blob_size, tmpl,
                            sizeof(tmpl) / sizeof(tmpl[0]), &obj);
    if (rv == CKR_GENERAL_ERROR && !probing) {
        /* Give the session back first: the probe needs one, and the pool may hold only this. */
        session_put(p, h, rv);
        have_session = false;
        if (hsm_unwraps_own_blob(p)) {
            return clst_err_set(err, CLST_E_VERIFY,
                                "the wrapped key does not unwrap under this HSM master key "
                                "(altered, or wrapped by another master key) (%s; the HSM "
                                "unwraps a fresh test blob, so it is sound)",
                                rv_name(rv));
        }
        return clst_err_set(err, CLST_E_IO,
                            "HSM: unwrapping a key with the master key failed (%s) and the HSM "
                            "cannot unwrap a fresh test blob either: the device or its token is "
                            "failing; check it, then restart",
                            rv_name(rv));
    }
    if (rv != CKR_OK) {
        obj = CK_INVALID_HANDLE;
        if (blob_rejected(rv)) {
            /* The session is fine: a rejected blob is an answer, not a failure. */
            CK_RV answer = rv;
            rv = CKR_OK;
            rc = clst_err_set(err, CLST_E_VERIFY,
                              "the wrapped key does not unwrap under this HSM master key "
                              "(altered, or wrapped by another master key) (%s)",
                              rv_name(answer));
            goto out;
        }
        rc = hsm_fail(err, rv, "unwrapping a key with the master key (C_UnwrapKey)");
        goto out;
    }
    rv = p->fl->C_GetAttributeValue(h, obj, &get, 1);
    if (rv != CKR_OK) {
        rc = hsm_fail(err, rv, "reading an unwrapped key (C_GetAttributeValue)");
        goto out;
    }
    if (get.ulValueLen == 0 || get.ulValueLen > sizeof(value)) {
        rc = clst_err_set(err, CLST_E_VERIFY, "the unwrapped key has an impossible size (%lu)",
                          (unsigned long)get.ulValueLen);
        goto out;
    }
    if (get.ulValueLen > out_cap) {
        rc = clst_err_set(err, CLST_E_LIMIT, "the unwrapped key (%lu bytes) does not fit",
                          (unsigned long)get.ulValueLen);
        goto out;
    }
    memcpy(out, value, get.ulValueLen);
    *out_size = get.ulValueLen;
    rc = CLST_OK;
out:
    if (have_session) {
        session_end(p, h, obj, rv);
    }
    clst_wipe(value, sizeof(value));
    return rc;
}

static void
p11_free(void *ctx)
{
    struct p11 *p = ctx;
    if (p == NULL) {
        return;
    }
    if (p->fl != NULL) {
        for (size_t i = 0; i < p->pool_count; i++) {
            (void)p->fl->C_CloseSession(p->pool[i]);
        }
        /* No C_Logout: the login belongs to the application, not to this provider (another
         * provider on the same token shares it), and it ends by itself when the application's
         * last session with the token closes. */
        if (p->have_login_session) {
            (void)p->fl->C_CloseSession(p->login_session);
        }
    }
    module_unref(p->mod);
    pthread_mutex_destroy(&p->lock);
    free(p);
}

static const struct clst_vault_masterkey_ops PKCS11_OPS = {
    .name = "pkcs11",
    .wrap = p11_wrap,
    .unwrap = p11_unwrap,
    .free = p11_free,
};

/* ---- opening -------------------------------------------------------------------------------- */

/* The 32-byte blank-padded label as a C string without the padding. */
static void
label_text(const CK_UTF8CHAR raw[32], char out[static CLST_PKCS11_LABEL_MAX + 1])
{
    size_t n = 32;
    while (n > 0 && (raw[n - 1] == ' ' || raw[n - 1] == '\0')) {
        n--;
    }
    memcpy(out, raw, n);
    out[n] = '\0';
}

static enum clst_status
find_slot(struct p11 *p, const char *module, const char *label, struct clst_err *err)
{
    CK_SLOT_ID slots[SLOTS_MAX];
    CK_ULONG count = SLOTS_MAX;
    char seen[LABELS_LIST_MAX] = "";
    size_t seen_len = 0;
    size_t matches = 0;
    CK_TOKEN_INFO found_info;
    memset(&found_info, 0, sizeof(found_info));

    CK_RV rv = p->fl->C_GetSlotList(CK_TRUE, slots, &count);
    if (rv == CKR_BUFFER_TOO_SMALL) {
        return clst_err_set(err, CLST_E_LIMIT, "PKCS#11 module %s has more than %d tokens", module,
                            SLOTS_MAX);
    }
    if (rv != CKR_OK) {
        return hsm_fail(err, rv, "listing the tokens (C_GetSlotList)");
    }
    for (CK_ULONG i = 0; i < count; i++) {
        CK_TOKEN_INFO info;
        char text[CLST_PKCS11_LABEL_MAX + 1];
        if (p->fl->C_GetTokenInfo(slots[i], &info) != CKR_OK) {
            continue;
        }
        label_text(info.label, text);
        if (strcmp(text, label) == 0) {
            if (matches++ == 0) {
                p->slot = slots[i];
                found_info = info;
            }
        }
        int w = snprintf(seen + seen_len, sizeof(seen) - seen_len, "%s'%s'",
                         seen_len > 0 ? ", " : "", text);
        if (w > 0 && (size_t)w < sizeof(seen) - seen_len) {
            seen_len += (size_t)w;
        }
    }
    if (matches == 0) {
        return clst_err_set(err, CLST_E_NOTFOUND,
                            "no token labelled '%s' in PKCS#11 module %s (tokens present: %s); "
                            "check --pkcs11-token, that the HSM is connected, and (SoftHSM2) "
                            "SOFTHSM2_CONF",
                            label, module, seen_len > 0 ? seen : "none");
    }
    if (matches > 1) {
        return clst_err_set(err, CLST_E_CONFLICT,
                            "%zu tokens are labelled '%s' in PKCS#11 module %s; give each token "
                            "a distinct label",
                            matches, label, module);
    }
    if ((found_info.flags & CKF_USER_PIN_LOCKED) != 0) {
        return clst_err_set(err, CLST_E_DENIED,
                            "the user PIN of token '%s' is locked (too many wrong PINs); the "
                            "security officer must unlock it",
                            label);
    }
    if ((found_info.flags & CKF_USER_PIN_INITIALIZED) == 0) {
        return clst_err_set(err, CLST_E_DENIED,
                            "token '%s' has no user PIN yet; initialize it (softhsm2-util "
                            "--init-token ... --pin PIN)",
                            label);
    }
    return CLST_OK;
}

static enum clst_status
check_mechanism(struct p11 *p, struct clst_err *err)
{
    CK_MECHANISM_INFO info;
    CK_RV rv = p->fl->C_GetMechanismInfo(p->slot, CKM_AES_KEY_WRAP_PAD, &info);
    if (rv == CKR_MECHANISM_INVALID ||
        (rv == CKR_OK && (info.flags & (CKF_WRAP | CKF_UNWRAP)) != (CKF_WRAP | CKF_UNWRAP))) {
        return clst_err_set(err, CLST_E_CRYPTO,
                            "token '%s' cannot wrap and unwrap with CKM_AES_KEY_WRAP_PAD (AES "
                            "key wrap with padding, RFC 5649), which the vault needs",
                            p->token_label);
    }
    if (rv != CKR_OK) {
        return hsm_fail(err, rv, "reading the token's mechanisms (C_GetMechanismInfo)");
    }
    if (info.ulMaxKeySize < KEY_SIZE || info.ulMinKeySize > KEY_SIZE) {
        return clst_err_set(err, CLST_E_CRYPTO,
                            "token '%s' does not wrap with 256-bit AES keys (CKM_AES_KEY_WRAP_PAD "
                            "key sizes %lu..%lu)",
                            p->token_label, (unsigned long)info.ulMinKeySize,
                            (unsigned long)info.ulMaxKeySize);
    }
    return CLST_OK;
}

static enum clst_status
login(struct p11 *p, const char *pin_file, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    char pin[PIN_FILE_MAX + 1];
    size_t pin_len = 0;

    rc = pin_read(pin_file, pin, &pin_len, err);
    if (rc != CLST_OK) {
        return rc;
    }
    CK_RV rv = p->fl->C_Login(p->login_session, CKU_USER, (CK_UTF8CHAR_PTR)pin, (CK_ULONG)pin_len);
    clst_wipe(pin, sizeof(pin));
    if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN) {
        /* ALREADY_LOGGED_IN: another provider in this process is logged in to the same token;
         * the login is the application's, shared by both. */
        return CLST_OK;
    }
    if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LEN_RANGE) {
        return clst_err_set(err, CLST_E_DENIED,
                            "the PIN in %s is wrong for token '%s' (%s); fix the PIN file (the "
                            "token may lock the PIN after repeated failures)",
                            pin_file, p->token_label, rv_name(rv));
    }
    if (rv == CKR_PIN_LOCKED) {
        return clst_err_set(err, CLST_E_DENIED,
                            "the user PIN of token '%s' is locked; the security officer must "
                            "unlock it",
                            p->token_label);
    }
    return hsm_fail(err, rv, "logging in to the token (C_Login)");
}

/* Finds the master key by label: CLST_E_NOTFOUND when there is none. */
static enum clst_status
find_key(struct p11 *p, CK_SESSION_HANDLE h, const char *label, struct clst_err *err)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    char lbl[CLST_PKCS11_LABEL_MAX * 4 + 1];
    size_t n = strlen(label);
    memcpy(lbl, label, n + 1);
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_LABEL, lbl, (CK_ULONG)n},
    };
    CK_OBJECT_HANDLE found[2];
    CK_ULONG count = 0;
    CK_RV rv = p->fl->C_FindObjectsInit(h, tmpl, sizeof(tmpl) / sizeof(tmpl[0]));
    if (rv != CKR_OK) {
        return hsm_fail(err, rv, "searching for the master key (C_FindObjectsInit)");
    }
    rv = p->fl->C_FindObjects(h, found, 2, &count);
    CK_RV frv = p->fl->C_FindObjectsFinal(h);
    if (rv == CKR_OK) {
        rv = frv;
    }
    if (rv != CKR_OK) {
        return hsm_fail(err, rv, "searching for the master key (C_FindObjects)");
    }
    if (count == 0) {
        return clst_err_set(err, CLST_E_NOTFOUND, "token '%s' holds no AES key labelled '%s'",
                            p->token_label, label);
    }
    if (count > 1) {
        return clst_err_set(err, CLST_E_CONFLICT,
                            "token '%s' holds more than one AES key labelled '%s'; the master key "
                            "must be unambiguous: remove or relabel the others",
                            p->token_label, label);
    }
    p->key = found[0];
    return CLST_OK;
}

static enum clst_status
create_key(struct p11 *p, CK_SESSION_HANDLE h, const char *label, struct clst_err *err)
{
    uint8_t id[KEY_ID_SIZE];
    char lbl[CLST_PKCS11_LABEL_MAX * 4 + 1];
    size_t n = strlen(label);
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_ULONG len = KEY_SIZE;
    memcpy(lbl, label, n + 1);
    if (clst_random(id, sizeof(id)) != CLST_OK) {
        return clst_err_set(err, CLST_E_CRYPTO, "no random bytes for the master key's CKA_ID");
    }
    CK_ATTRIBUTE tmpl[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_VALUE_LEN, &len, sizeof(len)},
        {CKA_TOKEN, &ck_true, sizeof(ck_true)},
        {CKA_PRIVATE, &ck_true, sizeof(ck_true)},
        {CKA_SENSITIVE, &ck_true, sizeof(ck_true)},
        {CKA_EXTRACTABLE, &ck_false, sizeof(ck_false)},
        {CKA_MODIFIABLE, &ck_false, sizeof(ck_false)},
        {CKA_WRAP, &ck_true, sizeof(ck_true)},
        {CKA_UNWRAP, &ck_true, sizeof(ck_true)},
        {CKA_ENCRYPT, &ck_false, sizeof(ck_false)},
        {CKA_DECRYPT, &ck_false, sizeof(ck_false)},
        {CKA_SIGN, &ck_false, sizeof(ck_false)},
        {CKA_VERIFY, &ck_false, sizeof(ck_false)},
        {CKA_DERIVE, &ck_false, sizeof(ck_false)},
        {CKA_LABEL, lbl, (CK_ULONG)n},
        {CKA_ID, id, sizeof(id)},
    };
    CK_MECHANISM mech = {CKM_AES_KEY_GEN, NULL, 0};
    CK_RV rv = p->fl->C_GenerateKey(h, &mech, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &p->key);
    if (rv != CKR_OK) {
        return hsm_fail(err, rv, "generating the master key in the token (C_GenerateKey)");
    }
    clst_log_info("vault: generated master key '%s' in PKCS#11 token '%s'", label, p->token_label);
    return CLST_OK;
}

/* Checks the key's attributes and forms its id from CKA_ID. */
static enum clst_status
check_key(struct p11 *p, CK_SESSION_HANDLE h, const char *label,
          char id[static CLST_VAULT_MKID_MAX + 1], struct clst_err *err)
{
    CK_BBOOL sensitive = CK_FALSE, extractable = CK_TRUE, wrap = CK_FALSE, unwrap = CK_FALSE;
    CK_BBOOL token = CK_FALSE;
    CK_ULONG len = 0;
    uint8_t ckid[64];
    CK_ATTRIBUTE a[] = {
        {CKA_SENSITIVE, &sensitive, sizeof(sensitive)},
        {CKA_EXTRACTABLE, &extractable, sizeof(extractable)},
        {CKA_WRAP, &wrap, sizeof(wrap)},
        {CKA_UNWRAP, &unwrap, sizeof(unwrap)},
        {CKA_TOKEN, &token, sizeof(token)},
        {CKA_VALUE_LEN, &len, sizeof(len)},
        {CKA_ID, ckid, sizeof(ckid)},
    };
    CK_RV rv = p->fl->C_GetAttributeValue(h, p->key, a, sizeof(a) / sizeof(a[0]));
    if (rv != CKR_OK) {
        return hsm_fail(err, rv, "reading the master key's attributes (C_GetAttributeValue)");
    }
    if (sensitive != CK_TRUE || extractable != CK_FALSE || token != CK_TRUE) {
        return clst_err_set(err, CLST_E_DENIED,
                            "the key '%s' in token '%s' is not a sensitive, non-extractable "
                            "token key (CKA_SENSITIVE=%s, CKA_EXTRACTABLE=%s, CKA_TOKEN=%s): its "
                            "value could leave the HSM, so it is refused as the master key",
                            label, p->token_label, sensitive ? "true" : "false",
                            extractable ? "true" : "false", token ? "true" : "false");
    }
    if (wrap != CK_TRUE || unwrap != CK_TRUE) {
        return clst_err_set(err, CLST_E_DENIED,
                            "the key '%s' in token '%s' may not wrap and unwrap keys (CKA_WRAP, "
                            "CKA_UNWRAP); it cannot be the master key",
                            label, p->token_label);
    }
    if (len != KEY_SIZE) {
        return clst_err_set(err, CLST_E_DENIED,
                            "the key '%s' in token '%s' is AES-%lu; the master key must be "
                            "AES-256",
                            label, p->token_label, (unsigned long)len * 8);
    }
    if (a[6].ulValueLen == 0 || a[6].ulValueLen == CK_UNAVAILABLE_INFORMATION ||
        a[6].ulValueLen > sizeof(ckid)) {
        return clst_err_set(err, CLST_E_DENIED,
                            "the key '%s' in token '%s' has no usable CKA_ID (1..64 bytes); the "
                            "vault names its master key by it",
                            label, p->token_label);
    }
    /* "pkcs11:" + hex of CKA_ID, or of its SHA-256 prefix when the id is long. */
    uint8_t digest[CLST_SHA256_SIZE];
    const uint8_t *idb = ckid;
    size_t idn = a[6].ulValueLen;
    if (idn > (CLST_VAULT_MKID_MAX - (sizeof(ID_PREFIX) - 1)) / 2) {
        if (clst_sha256(ckid, idn, digest) != CLST_OK) {
            return clst_err_set(err, CLST_E_CRYPTO, "hashing the master key's CKA_ID failed");
        }
        idb = digest;
        idn = KEY_ID_SIZE;
    }
    memcpy(id, ID_PREFIX, sizeof(ID_PREFIX));
    if (clst_hex_to_str(idb, idn, id + sizeof(ID_PREFIX) - 1,
                        CLST_VAULT_MKID_MAX + 1 - (sizeof(ID_PREFIX) - 1)) != CLST_OK) {
        return clst_err_set(err, CLST_E_INTERNAL, "formatting the master key id failed");
    }
    return CLST_OK;
}

/* Wraps and unwraps a random key once: the mechanism works with this key, end to end. */
static enum clst_status
self_test(struct p11 *p, struct clst_err *err)
{
    uint8_t k[CLST_VAULT_OBJECT_KEY_SIZE];
    uint8_t back[CLST_VAULT_OBJECT_KEY_SIZE];
    uint8_t blob[CLST_VAULT_WRAPPED_MAX];
    size_t blob_size = 0;
    size_t back_size = 0;
    enum clst_status rc = clst_random(k, sizeof(k));
    if (rc != CLST_OK) {
        return clst_err_set(err, rc, "no random bytes for the HSM self-test");
    }
    rc = p11_wrap(p, k, sizeof(k), blob, sizeof(blob), &blob_size, err);
    if (rc == CLST_OK) {
        rc = p11_unwrap(p, blob, blob_size, back, sizeof(back), &back_size, err);
    }
    if (rc == CLST_OK && (back_size != sizeof(k) || !clst_ct_equal(back, k, sizeof(k)))) {
        rc = clst_err_set(err, CLST_E_CRYPTO,
                          "HSM self-test: a key wrapped and unwrapped by token '%s' came back "
                          "different",
                          p->token_label);
    }
    clst_wipe(k, sizeof(k));
    clst_wipe(back, sizeof(back));
    if (rc != CLST_OK) {
        return clst_err_prefix(err, "HSM self-test (wrap and unwrap a test key)");
    }
    return CLST_OK;
}

enum clst_status
clst_vault_masterkey_pkcs11_open(const struct clst_pkcs11_config *cfg,
                                 struct clst_vault_masterkey **out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_INTERNAL;
    struct p11 *p = NULL;
    char id[CLST_VAULT_MKID_MAX + 1];

    if (cfg == NULL || out == NULL || cfg->module == NULL || cfg->module[0] == '\0' ||
        cfg->token_label == NULL || cfg->token_label[0] == '\0' || cfg->pin_file == NULL ||
        cfg->pin_file[0] == '\0') {
        return clst_err_set(err, CLST_E_INVAL,
                            "the PKCS#11 master key needs a module, a token label and a PIN file");
    }
    const char *key_label = cfg->key_label != NULL ? cfg->key_label : CLST_PKCS11_DEFAULT_KEY_LABEL;
    if (strlen(cfg->token_label) > CLST_PKCS11_LABEL_MAX) {
        return clst_err_set(err, CLST_E_INVAL, "token labels have at most %d bytes",
                            CLST_PKCS11_LABEL_MAX);
    }
    if (key_label[0] == '\0' || strlen(key_label) > CLST_PKCS11_LABEL_MAX * 4) {
        return clst_err_set(err, CLST_E_INVAL, "the master key label must have 1..%d bytes",
                            CLST_PKCS11_LABEL_MAX * 4);
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        return clst_err_set(err, CLST_E_NOMEM, "out of memory");
    }
    if (pthread_mutex_init(&p->lock, NULL) != 0) {
        free(p);
        return clst_err_set(err, CLST_E_INTERNAL, "cannot create a lock");
    }
    memcpy(p->token_label, cfg->token_label, strlen(cfg->token_label) + 1);

    rc = module_load(cfg->module, &p->mod, err);
    if (rc != CLST_OK) {
        goto out;
    }
    p->fl = p->mod->fl;
    if ((rc = find_slot(p, cfg->module, cfg->token_label, err)) != CLST_OK ||
        (rc = check_mechanism(p, err)) != CLST_OK) {
        goto out;
    }
    CK_RV rv = p->fl->C_OpenSession(p->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
                                    &p->login_session);
    if (rv != CKR_OK) {
        rc = hsm_fail(err, rv, "opening a session (C_OpenSession)");
        goto out;
    }
    p->have_login_session = true;
    if ((rc = login(p, cfg->pin_file, err)) != CLST_OK) {
        goto out;
    }
    rc = find_key(p, p->login_session, key_label, err);
    if (rc == CLST_E_NOTFOUND && cfg->create_key) {
        clst_err_clear(err);
        rc = create_key(p, p->login_session, key_label, err);
    } else if (rc == CLST_E_NOTFOUND) {
        rc = clst_err_set(err, CLST_E_NOTFOUND,
                          "token '%s' holds no AES key labelled '%s'; check the key label, or "
                          "let cloister create it (cloister serve and cloister admin rewrap do)",
                          p->token_label, key_label);
    }
    if (rc != CLST_OK || (rc = check_key(p, p->login_session, key_label, id, err)) != CLST_OK ||
        (rc = self_test(p, err)) != CLST_OK) {
        goto out;
    }
    rc = clst_vault_masterkey_new(&PKCS11_OPS, p, id, out);
    if (rc != CLST_OK) {
        rc = clst_err_set(err, rc, "out of memory");
        goto out;
    }
    p = NULL; /* owned by the master key */
    rc = CLST_OK;
out:
    p11_free(p);
    return rc;
}
