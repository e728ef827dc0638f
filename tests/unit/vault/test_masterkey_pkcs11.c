/*
 * Unit tests for src/vault/masterkey_pkcs11.c against a real SoftHSM2 token (Debian's softhsm2):
 * every test makes its own token directory and SOFTHSM2_CONF, initializes tokens with
 * softhsm2-util, and removes everything afterwards.
 *
 * Covered: the key is made once and found again (same id); its attributes as seen through an
 * independent PKCS#11 session (sensitive, never extractable, CKA_VALUE unreadable, only
 * wrap/unwrap allowed); wrap/unwrap round trips; altered, truncated, foreign and mis-sized
 * blobs refused with CLST_E_VERIFY; a store sealed under the HSM key read back; a missing
 * module, a missing token, a wrong PIN, an unsafe or empty PIN file, a missing key without
 * create_key, an extractable key, two keys with one label; many threads at once; and the
 * master-key rewrap of a SQLite vault (file key to HSM and back), including a rewrap that fails
 * midway and changes nothing.
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>
#include <sqlite3.h>

#include <cloister/crypto.h>
#include <cloister/vault_hsm.h>
#include <cloister/vault_store.h>

#include "test_util.h"
#include "vault/keymat.h" /* clst_vault_backup_key: a setting that holds a wrapped key */

#define SOFTHSM_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#define TOKEN          "clst-test"
#define TOKEN2         "clst-other"
#define PIN            "4711-pin"
#define SO_PIN         "so-secret-99"

struct fixture {
    char dir[128];
    char conf[192];
    char pin_file[192];
    char db[192];
    char mkfile[192];
};

static int
run_cmd(const char *cmd)
{
    int st = system(cmd);
    return (st != -1 && WIFEXITED(st)) ? WEXITSTATUS(st) : -1;
}

static void
write_file(const char *path, const char *data, mode_t mode)
{
    unlink(path);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    size_t n = strlen(data);
    assert_int_equal(write(fd, data, n), (ssize_t)n);
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static int
init_token(const struct fixture *f, const char *label)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "SOFTHSM2_CONF='%s' softhsm2-util --init-token --free --label '%s' --pin '%s' "
             "--so-pin '%s' >/dev/null 2>&1",
             f->conf, label, PIN, SO_PIN);
    return run_cmd(cmd);
}

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    char tokens[192];
    char text[512];
    if (f == NULL) {
        return -1;
    }
    snprintf(f->dir, sizeof(f->dir), "/tmp/clst-hsm-test-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(tokens, sizeof(tokens), "%s/tokens", f->dir);
    snprintf(f->conf, sizeof(f->conf), "%s/softhsm2.conf", f->dir);
    snprintf(f->pin_file, sizeof(f->pin_file), "%s/pin", f->dir);
    snprintf(f->db, sizeof(f->db), "%s/vault.db", f->dir);
    snprintf(f->mkfile, sizeof(f->mkfile), "%s/master.key", f->dir);
    if (mkdir(tokens, 0700) != 0) {
        return -1;
    }
    snprintf(text, sizeof(text),
             "directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n"
             "slots.removable = false\n",
             tokens);
    write_file(f->conf, text, 0600);
    write_file(f->pin_file, PIN "\n", 0600);
    setenv("SOFTHSM2_CONF", f->conf, 1);
    if (init_token(f, TOKEN) != 0) {
        fprintf(stderr, "softhsm2-util --init-token failed (is softhsm2 installed?)\n");
        return -1;
    }
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "rm -rf -- '%s'", f->dir);
    (void)run_cmd(cmd);
    free(f);
    return 0;
}

static struct clst_pkcs11_config
config(const struct fixture *f)
{
    struct clst_pkcs11_config c = {
        .module = SOFTHSM_MODULE,
        .token_label = TOKEN,
        .pin_file = f->pin_file,
        .key_label = NULL,
        .create_key = true,
    };
    return c;
}

/* ---- an independent PKCS#11 session (the test's own view of the token) ---------------------- */

struct raw {
    void *dl;
    CK_FUNCTION_LIST_PTR fl;
    CK_SESSION_HANDLE h;
};

static void
raw_open(struct raw *r, const char *token)
{
    CK_C_GetFunctionList get = NULL;
    void *sym;
    CK_SLOT_ID slots[16];
    CK_ULONG count = 16;
    CK_C_INITIALIZE_ARGS args;
    r->dl = dlopen(SOFTHSM_MODULE, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(r->dl);
    sym = dlsym(r->dl, "C_GetFunctionList");
    assert_non_null(sym);
    memcpy(&get, &sym, sizeof(get));
    assert_int_equal(get(&r->fl), CKR_OK);
    memset(&args, 0, sizeof(args));
    args.flags = CKF_OS_LOCKING_OK;
    assert_int_equal(r->fl->C_Initialize(&args), CKR_OK);
    assert_int_equal(r->fl->C_GetSlotList(CK_TRUE, slots, &count), CKR_OK);
    bool found = false;
    for (CK_ULONG i = 0; i < count && !found; i++) {
        CK_TOKEN_INFO info;
        assert_int_equal(r->fl->C_GetTokenInfo(slots[i], &info), CKR_OK);
        if (strncmp((const char *)info.label, token, strlen(token)) == 0 &&
            info.label[strlen(token)] == ' ') {
            assert_int_equal(r->fl->C_OpenSession(slots[i], CKF_SERIAL_SESSION | CKF_RW_SESSION,
                                                  NULL, NULL, &r->h),
                             CKR_OK);
            found = true;
        }
    }
    assert_true(found);
    char pin[] = PIN;
    assert_int_equal(r->fl->C_Login(r->h, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)), CKR_OK);
}

static void
raw_close(struct raw *r)
{
    (void)r->fl->C_Logout(r->h);
    (void)r->fl->C_CloseSession(r->h);
    assert_int_equal(r->fl->C_Finalize(NULL), CKR_OK);
    dlclose(r->dl);
}

static CK_ULONG
raw_find(struct raw *r, const char *label, CK_OBJECT_HANDLE *out)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    char lbl[64];
    snprintf(lbl, sizeof(lbl), "%s", label);
    CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, lbl, strlen(lbl)}};
    CK_OBJECT_HANDLE found[4];
    CK_ULONG n = 0;
    assert_int_equal(r->fl->C_FindObjectsInit(r->h, t, 2), CKR_OK);
    assert_int_equal(r->fl->C_FindObjects(r->h, found, 4, &n), CKR_OK);
    assert_int_equal(r->fl->C_FindObjectsFinal(r->h), CKR_OK);
    if (n > 0 && out != NULL) {
        *out = found[0];
    }
    return n;
}

/* An AES-256 token key with the given label; `extractable` as asked. */
static void
raw_make_key(struct raw *r, const char *label, bool extractable)
{
    CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
    CK_KEY_TYPE kt = CKK_AES;
    CK_ULONG len = 32;
    CK_BBOOL t = CK_TRUE, ext = extractable ? CK_TRUE : CK_FALSE;
    uint8_t id[4] = {1, 2, 3, 4};
    char lbl[64];
    snprintf(lbl, sizeof(lbl), "%s", label);
    CK_ATTRIBUTE a[] = {
        {CKA_CLASS, &cls, sizeof(cls)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_VALUE_LEN, &len, sizeof(len)},
        {CKA_TOKEN, &t, sizeof(t)},
        {CKA_PRIVATE, &t, sizeof(t)},
        {CKA_SENSITIVE, &t, sizeof(t)},
        {CKA_EXTRACTABLE, &ext, sizeof(ext)},
        {CKA_WRAP, &t, sizeof(t)},
        {CKA_UNWRAP, &t, sizeof(t)},
        {CKA_LABEL, lbl, strlen(lbl)},
        {CKA_ID, id, sizeof(id)},
    };
    CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
    CK_OBJECT_HANDLE k;
    assert_int_equal(r->fl->C_GenerateKey(r->h, &m, a, sizeof(a) / sizeof(a[0]), &k), CKR_OK);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void
roundtrip(struct clst_vault_masterkey *mk)
{
    uint8_t key[32], back[64], blob[CLST_VAULT_WRAPPED_MAX];
    size_t blob_size = 0, back_size = 0;
    struct clst_err err;
    assert_int_equal(clst_random(key, sizeof(key)), CLST_OK);
    assert_int_equal(
        clst_vault_masterkey_wrap(mk, key, sizeof(key), blob, sizeof(blob), &blob_size, &err),
        CLST_OK);
    assert_int_equal(blob_size, 40); /* RFC 5649: 32 bytes + the 8-byte integrity block */
    assert_int_equal(
        clst_vault_masterkey_unwrap(mk, blob, blob_size, back, sizeof(back), &back_size, &err),
        CLST_OK);
    assert_int_equal(back_size, 32);
    assert_memory_equal(back, key, 32);
}

static void
test_create_find_and_roundtrip(void **state)
{
    struct fixture *f = *state;
    struct clst_pkcs11_config c = config(f);
    struct clst_vault_masterkey *mk = NULL;
    struct clst_err err;
    char id[CLST_VAULT_MKID_MAX + 1];

    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c, &mk, &err), CLST_OK);
    snprintf(id, sizeof(id), "%s", clst_vault_masterkey_id(mk));
    assert_int_equal(strncmp(id, "pkcs11:", 7), 0);
    assert_int_equal(strlen(id), 7 + 32);
    roundtrip(mk);

    /* Two wraps of one key are equal (KWP is deterministic) and both unwrap. */
    uint8_t key[32] = {0x42}, b1[64], b2[64], back[32];
    size_t n1 = 0, n2 = 0, nb = 0;
    assert_int_equal(clst_vault_masterkey_wrap(mk, key, 32, b1, sizeof(b1), &n1, &err), CLST_OK);
    assert_int_equal(clst_vault_masterkey_wrap(mk, key, 32, b2, sizeof(b2), &n2, &err), CLST_OK);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    /* Other sizes the interface allows. */
    assert_int_equal(clst_vault_masterkey_wrap(mk, key, 16, b1, sizeof(b1), &n1, &err), CLST_OK);
    assert_int_equal(n1, 24);
    assert_int_equal(clst_vault_masterkey_unwrap(mk, b1, n1, back, sizeof(back), &nb, &err),
                     CLST_OK);
    assert_int_equal(nb, 16);
    assert_memory_equal(back, key, 16);
    /* Output too small. */
    assert_int_equal(clst_vault_masterkey_wrap(mk, key, 32, b1, 39, &n1, &err), CLST_E_LIMIT);
    assert_int_equal(clst_vault_masterkey_wrap(mk, key, 32, b1, sizeof(b1), &n1, &err), CLST_OK);
    assert_int_equal(clst_vault_masterkey_unwrap(mk, b1, n1, back, 31, &nb, &err), CLST_E_LIMIT);
    clst_vault_masterkey_free(mk);

    /* Opened again (no creation allowed): the same key, the same id, old blobs unwrap. */
    c.create_key = false;
    mk = NULL;
    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c, &mk, &err), CLST_OK);
    assert_string_equal(clst_vault_masterkey_id(mk), id);
    assert_int_equal(clst_vault_masterkey_unwrap(mk, b2, n2, back, sizeof(back), &nb, &err),
                     CLST_OK);
    assert_memory_equal(back, key, 32);
    clst_vault_masterkey_free(mk);

    /* Exactly one key with that label exists in the token. */
    struct raw r;
    raw_open(&r, TOKEN);
    assert_int_equal(raw_find(&r, CLST_PKCS11_DEFAULT_KEY_LABEL, NULL), 1);
    raw_close(&r);
}

static void
test_key_attributes(void **state)
{
    struct fixture *f = *state;
    struct clst_pkcs11_config c = config(f);
    struct clst_vault_masterkey *mk = NULL;
    struct clst_err err;
    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c, &mk, &err), CLST_OK);
    clst_vault_masterkey_free(mk);

    struct raw r;
    CK_OBJECT_HANDLE k = CK_INVALID_HANDLE;
    raw_open(&r, TOKEN);
    assert_int_equal(raw_find(&r, CLST_PKCS11_DEFAULT_KEY_LABEL, &k), 1);
    CK_BBOOL extractable = CK_TRUE, sensitive = CK_FALSE, never_ext = CK_FALSE;
    CK_BBOOL always_sens = CK_FALSE, token = CK_FALSE, enc = CK_TRUE, dec = CK_TRUE;
    CK_BBOOL wrap = CK_FALSE, unwrap = CK_FALSE, priv = CK_FALSE;
    CK_KEY_TYPE kt = 0;
    CK_ULONG len = 0;
    CK_ATTRIBUTE a[] = {
        {CKA_EXTRACTABLE, &extractable, sizeof(extractable)},
        {CKA_SENSITIVE, &sensitive, sizeof(sensitive)},
        {CKA_NEVER_EXTRACTABLE, &never_ext, sizeof(never_ext)},
        {CKA_ALWAYS_SENSITIVE, &always_sens, sizeof(always_sens)},
        {CKA_TOKEN, &token, sizeof(token)},
        {CKA_PRIVATE, &priv, sizeof(priv)},
        {CKA_ENCRYPT, &enc, sizeof(enc)},
        {CKA_DECRYPT, &dec, sizeof(dec)},
        {CKA_WRAP, &wrap, sizeof(wrap)},
        {CKA_UNWRAP, &unwrap, sizeof(unwrap)},
        {CKA_KEY_TYPE, &kt, sizeof(kt)},
        {CKA_VALUE_LEN, &len, sizeof(len)},
    };
    assert_int_equal(r.fl->C_GetAttributeValue(r.h, k, a, sizeof(a) / sizeof(a[0])), CKR_OK);
    assert_int_equal(extractable, CK_FALSE);
    assert_int_equal(sensitive, CK_TRUE);
    assert_int_equal(never_ext, CK_TRUE);
    assert_int_equal(always_sens, CK_TRUE);
    assert_int_equal(token, CK_TRUE);
    assert_int_equal(priv, CK_TRUE);
    assert_int_equal(enc, CK_FALSE);
    assert_int_equal(dec, CK_FALSE);
    assert_int_equal(wrap, CK_TRUE);
    assert_int_equal(unwrap, CK_TRUE);
    assert_int_equal(kt, CKK_AES);
    assert_int_equal(len, 32);

    /* The value cannot be read... */
    uint8_t value[64];
    CK_ATTRIBUTE v = {CKA_VALUE, value, sizeof(value)};
    assert_int_equal(r.fl->C_GetAttributeValue(r.h, k, &v, 1), CKR_ATTRIBUTE_SENSITIVE);
    assert_true(v.ulValueLen == CK_UNAVAILABLE_INFORMATION);
    /* ...nor made extractable... */
    CK_BBOOL t = CK_TRUE;
    CK_ATTRIBUTE mk_ext = {CKA_EXTRACTABLE, &t, sizeof(t)};
    assert_int_not_equal(r.fl->C_SetAttributeValue(r.h, k, &mk_ext, 1), CKR_OK);
    /* ...nor wrapped out by another key of the token. */
    raw_make_key(&r, "exporter", true);
    CK_OBJECT_HANDLE exporter;
    assert_int_equal(raw_find(&r, "exporter", &exporter), 1);
    CK_MECHANISM m = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
    uint8_t out[128];
    CK_ULONG out_len = sizeof(out);
    CK_RV rv = r.fl->C_WrapKey(r.h, &m, exporter, k, out, &out_len);
    assert_int_equal(rv, CKR_KEY_UNEXTRACTABLE);
    /* ...nor used to encrypt data. */
    CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
    assert_int_not_equal(r.fl->C_EncryptInit(r.h, &ecb, k), CKR_OK);
    raw_close(&r);
}

static void
test_bad_blobs(void **state)
{
    struct fixture *f = *state;
    struct clst_pkcs11_config c = config(f);
    struct clst_vault_masterkey *mk = NULL, *file_mk = NULL;
    struct clst_err err;
    uint8_t key[32], blob[64], mutant[64], back[64];
    size_t n = 0, nb = 0;

    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c, &mk, &err), CLST_OK);
    assert_int_equal(clst_random(key, sizeof(key)), CLST_OK);
    assert_int_equal(clst_vault_masterkey_wrap(mk, key, 32, blob, sizeof(blob), &n, &err), CLST_OK);
    assert_int_equal(n, 40);
    /* Every single-bit flip in every byte position is refused as "not this key / altered". */
    for (size_t i = 0; i < n; i++) {
        memcpy(mutant, blob, n);
        mutant[i] ^= (uint8_t)(1u << (i % 8));
        memset(back, 0xEE, sizeof(back));
        assert_int_equal(clst_vault_masterkey_unwrap(mk, mutant, n, back, sizeof(back), &nb, &err),
                         CLST_E_VERIFY);
        /* Nothing written on failure. */
        for (size_t j = 0; j < sizeof(back); j++) {
            assert_int_equal(back[j], 0xEE);
        }
    }
    /* Truncations (a block short, a byte short, empty-ish) and an extension. */
    assert_int_equal(clst_vault_masterkey_unwrap(mk, blob, 32, back, sizeof(back), &nb, &err),
                     CLST_E_VERIFY);
    assert_int_equal(clst_vault_masterkey_unwrap(mk, blob, 39, back, sizeof(back), &nb, &err),
                     CLST_E_VERIFY);
    assert_int_equal(clst_vault_masterkey_unwrap(mk, blob, 8, back, sizeof(back), &nb, &err),
                     CLST_E_VERIFY);
    memcpy(mutant, blob, n);
    memset(mutant + n, 0, 8);
    assert_int_equal(clst_vault_masterkey_unwrap(mk, mutant, n + 8, back, sizeof(back), &nb, &err),
                     CLST_E_VERIFY);
    /* A blob of a file master key does not unwrap under the HSM key (and vice versa). */
    assert_int_equal(clst_vault_masterkey_file_create(f->mkfile, &err), CLST_OK);
    assert_int_equal(clst_vault_masterkey_file_load(f->mkfile, &file_mk, &err), CLST_OK);
    assert_string_not_equal(clst_vault_masterkey_id(file_mk), clst_vault_masterkey_id(mk));
    assert_int_equal(clst_vault_masterkey_wrap(file_mk, key, 32, mutant, sizeof(mutant), &nb, &err),
                     CLST_OK);
    assert_int_equal(nb, 40);
    assert_int_equal(clst_vault_masterkey_unwrap(mk, mutant, nb, back, sizeof(back), &n, &err),
                     CLST_E_VERIFY);
    assert_int_equal(clst_vault_masterkey_unwrap(file_mk, blob, 40, back, sizeof(back), &n, &err),
                     CLST_E_VERIFY);
    /* The session survives refused blobs: a good one still unwraps. */
    assert_int_equal(clst_vault_masterkey_unwrap(mk, blob, 40, back, sizeof(back), &nb, &err),
                     CLST_OK);
    assert_memory_equal(back, key, 32);
    clst_vault_masterkey_free(file_mk);
    clst_vault_masterkey_free(mk);
}

/*
 * SoftHSM2 answers a tampered blob with CKR_GENERAL_ERROR, which a failing device may answer too.
 * Through p11-faulty.so (SoftHSM2 whose C_UnwrapKey fails while a fault file exists): a tampered
 * blob on a sound device is "altered" (CLST_E_VERIFY, the HSM's own test blob unwraps); every
 * blob on a failing device is a device failure (CLST_E_IO), never blamed on the data.
 */
static void
test_failing_device_is_not_bad_data(void **state)
{
    struct fixture *f = *state;
    struct clst_pkcs11_config c = config(f);
    struct clst_vault_masterkey *mk = NULL;
    struct clst_err err;
    uint8_t key[32], blob[64], mutant[64], back[64];
    size_t n = 0, nb = 0;
    char fault[256];

    snprintf(fault, sizeof(fault), "%s/fault", f->dir);
    assert_int_equal(setenv("CLST_P11_FAULT_FILE", fault, 1), 0);
    c.module = CLST_P11_FAULTY_MODULE;
    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c, &mk, &err), CLST_OK);
    assert_int_equal(clst_random(key, sizeof(key)), CLST_OK);
    assert_int_equal(clst_vault_masterkey_wrap(mk, key, 32, blob, sizeof(blob), &n, &err), CLST_OK);
    memcpy(mutant, blob, n);
    mutant[5] ^= 0x10;
    clst_err_clear(&err);
    assert_int_equal(clst_vault_masterkey_unwrap(mk, mutant, n, back, sizeof(back), &nb, &err),
                     CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "sound"));

    FILE *fp = fopen(fault, "w"); /* the device starts failing */
    assert_non_null(fp);
    fclose(fp);
    clst_err_clear(&err);
    memset(back, 0xEE, sizeof(back));
    assert_int_equal(clst_vault_masterkey_unwrap(mk, blob, n, back, sizeof(back), &nb, &err),
                     CLST_E_IO);
    assert_non_null(strstr(err.msg, "device"));
    assert_int_equal(back[0], 0xEE);
    assert_int_equal(clst_vault_masterkey_unwrap(mk, mutant, n, back, sizeof(back), &nb, &err),
                     CLST_E_IO);

    assert_int_equal(unlink(fault), 0); /* and recovers */
    assert_int_equal(clst_vault_masterkey_unwrap(mk, blob, n, back, sizeof(back), &nb, &err),
                     CLST_OK);
    assert_memory_equal(back, key, 32);
    clst_vault_masterkey_free(mk);
    unsetenv("CLST_P11_FAULT_FILE");
}

static void
test_other_token_cannot_unwrap(void **state)
{
    struct fixture *f = *state;
    struct clst_pkcs11_config c = config(f);
    struct clst_pkcs11_config c2 = config(f);
    struct clst_vault_masterkey *a = NULL, *b = NULL;
    struct clst_err err;
    uint8_t key[32] = {7}, blob[64], back[64];
    size_t n = 0, nb = 0;

    assert_int_equal(init_token(f, TOKEN2), 0);
    c2.token_label = TOKEN2;
    /* Two providers over one module at once: the module stays initialized until both go. */
    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c, &a, &err), CLST_OK);
    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c2, &b, &err), CLST_OK);
    assert_string_not_equal(clst_vault_masterkey_id(a), clst_vault_masterkey_id(b));
    assert_int_equal(clst_vault_masterkey_wrap(a, key, 32, blob, sizeof(blob), &n, &err), CLST_OK);
    assert_int_equal(clst_vault_masterkey_unwrap(b, blob, n, back, sizeof(back), &nb, &err),
                     CLST_E_VERIFY);
    clst_vault_masterkey_free(b);
    assert_int_equal(clst_vault_masterkey_unwrap(a, blob, n, back, sizeof(back), &nb, &err),
                     CLST_OK);
    assert_memory_equal(back, key, 32);
    clst_vault_masterkey_free(a);
}

/* Two providers on one token (two key labels): the login is shared, and freeing one provider
 * does not log the other out. */
static void
test_same_token_twice(void **state)
{
    struct fixture *f = *state;
    struct clst_pkcs11_config c = config(f);
    struct clst_pkcs11_config c2 = config(f);
    struct clst_vault_masterkey *a = NULL, *b = NULL;
    struct clst_err err;
    c2.key_label = "second-vault";
    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c, &a, &err), CLST_OK);
    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c2, &b, &err), CLST_OK);
    assert_string_not_equal(clst_vault_masterkey_id(a), clst_vault_masterkey_id(b));
    roundtrip(a);
    roundtrip(b);
    clst_vault_masterkey_free(a);
    roundtrip(b);
    clst_vault_masterkey_free(b);
}

static void
test_unavailable(void **state)
{
    struct fixture *f = *state;
    struct clst_pkcs11_config c = config(f);
    struct clst_vault_masterkey *mk = NULL;
    struct clst_err err;

    /* Missing module. */
    c.module = "/nonexistent/libpkcs11-missing.so";
    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c, &mk, &err), CLST_E_NOTFOUND);
    assert_null(mk);
    assert_non_null(strstr(err.msg, "/nonexistent/libpkcs11-missing.so"));
    assert_non_null(strstr(err.msg, "--pkcs11-module"));
    /* A file that is not a PKCS#11 module. */
    c.module = f->conf;
    assert_int_not_equal(clst_vault_masterkey_pkcs11_open(&c, &mk, &err), CLST_OK);
    assert_null(mk);
    /* Missing token: the message names it and lists the tokens present. */
    c = config(f);
    c.token_label = "no-such-token";
    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c, &mk, &err), CLST_E_NOTFOUND);
    assert_null(mk);
    assert_non_null(strstr(err.msg, "no-such-token"));
    assert_non_null(strstr(err.msg, "'" TOKEN "'"));
    /* An over-long token label. */
    c.token_label = "0123456789012345678901234567890123456789";
    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c, &mk, &err), CLST_E_INVAL);
    /* Missing key without create_key: refused, and nothing was created. */
    c = config(f);
    c.create_key = false;
    c.key_label = "not-made-yet";
    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c, &mk, &err), CLST_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "not-made-yet"));
    struct raw r;
    raw_open(&r, TOKEN);
    assert_int_equal(raw_find(&r, "not-made-yet", NULL), 0);
    raw_close(&r);
    /* The module still works after all those failures. */
    c = config(f);
    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c, &mk, &err), CLST_OK);
    roundtrip(mk);
    clst_vault_masterkey_free(mk);
}

static void
test_pin(void **state)
{
    struct fixture *f = *state;
    struct clst_pkcs11_config c = config(f);
    struct clst_vault_masterkey *mk = NULL;
    struct clst_err err;

    write_file(f->pin_file, "wrong-pin\n", 0600);
    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c, &mk, &err), CLST_E_DENIED);
    assert_null(mk);
    assert_non_null(strstr(err.msg, "wrong"));
    assert_non_null(strstr(err.msg, f->pin_file));
    /* The right PIN with a trailing newline is stripped... */
    write_file(f->pin_file, PIN "\r\n", 0600);
    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c, &mk, &err), CLST_OK);
    clst_vault_masterkey_free(mk);
    mk = NULL;
    /* ...but only one: two newlines make another PIN. */
    write_file(f->pin_file, PIN "\n\n", 0600);
    assert_int_not_equal(clst_vault_masterkey_pkcs11_open(&c, &mk, &err), CLST_OK);
    /* Without any newline. */
    write_file(f->pin_file, PIN, 0600);
    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c, &mk, &err), CLST_OK);
    clst_vault_masterkey_free(mk);
    mk = NULL;
    /* Readable by others: refused before the PIN is used. */
    write_file(f->pin_file, PIN "\n", 0640);
    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c, &mk, &err), CLST_E_DENIED);
    assert_non_null(strstr(err.msg, "chmod 600"));
    /* Empty, missing. */
    write_file(f->pin_file, "\n", 0600);
    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c, &mk, &err), CLST_E_INVAL);
    unlink(f->pin_file);
    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c, &mk, &err), CLST_E_NOTFOUND);
    assert_null(mk);
}

static void
test_refused_keys(void **state)
{
    struct fixture *f = *state;
    struct clst_pkcs11_config c = config(f);
    struct clst_vault_masterkey *mk = NULL;
    struct clst_err err;
    struct raw r;

    raw_open(&r, TOKEN);
    raw_make_key(&r, "weak", true);
    raw_make_key(&r, "twice", false);
    raw_make_key(&r, "twice", false);
    raw_close(&r);

    c.key_label = "weak";
    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c, &mk, &err), CLST_E_DENIED);
    assert_non_null(strstr(err.msg, "CKA_EXTRACTABLE=true"));
    c.key_label = "twice";
    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c, &mk, &err), CLST_E_CONFLICT);
    assert_null(mk);
}

struct thread_arg {
    struct clst_vault_masterkey *mk;
    int failures;
};

static void *
hammer(void *p)
{
    struct thread_arg *a = p;
    for (int i = 0; i < 40; i++) {
        uint8_t key[32], blob[64], back[64];
        size_t n = 0, nb = 0;
        if (clst_random(key, sizeof(key)) != CLST_OK ||
            clst_vault_masterkey_wrap(a->mk, key, 32, blob, sizeof(blob), &n, NULL) != CLST_OK ||
            clst_vault_masterkey_unwrap(a->mk, blob, n, back, sizeof(back), &nb, NULL) != CLST_OK ||
            nb != 32 || memcmp(back, key, 32) != 0) {
            a->failures++;
        }
        blob[3] ^= 1;
        if (clst_vault_masterkey_unwrap(a->mk, blob, n, back, sizeof(back), &nb, NULL) !=
            CLST_E_VERIFY) {
            a->failures++;
        }
    }
    return NULL;
}

static void
test_threads(void **state)
{
    struct fixture *f = *state;
    struct clst_pkcs11_config c = config(f);
    struct clst_vault_masterkey *mk = NULL;
    struct clst_err err;
    pthread_t t[8];
    struct thread_arg args[8];

    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c, &mk, &err), CLST_OK);
    for (int i = 0; i < 8; i++) {
        args[i].mk = mk;
        args[i].failures = 0;
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &args[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(args[i].failures, 0);
    }
    clst_vault_masterkey_free(mk);
}

/* ---- with the store ------------------------------------------------------------------------- */

static enum clst_status
store_open(const struct fixture *f, struct clst_vault_masterkey *mk, struct clst_vault_store **s,
           struct clst_err *err)
{
    struct clst_vault_sqlite_options opt = {.path = f->db, .busy_timeout_ms = 5000};
    return clst_vault_store_open_sqlite(&opt, mk, NULL, s, err);
}

static void
put_secret(struct clst_vault_store *s, const char *name, const char *value)
{
    struct clst_vault_object o;
    struct clst_err err;
    memset(&o, 0, sizeof(o));
    o.kind = CLST_VAULT_KIND_SECRET;
    snprintf(o.name, sizeof(o.name), "%s", name);
    o.attrs.enabled = true;
    snprintf(o.attrs.recovery_level, sizeof(o.attrs.recovery_level), "Recoverable+Purgeable");
    o.attrs.recoverable_days = 7;
    assert_int_equal(clst_vault_store_put(s, &o, (const uint8_t *)value, strlen(value), NULL, &err),
                     CLST_OK);
}

static void
expect_secret(struct clst_vault_store *s, const char *name, const char *value)
{
    struct clst_vault_object o;
    struct clst_secret *v = NULL;
    struct clst_err err;
    memset(&o, 0, sizeof(o));
    assert_int_equal(clst_vault_store_get(s, CLST_VAULT_KIND_SECRET, name, NULL, &o, &v, &err),
                     CLST_OK);
    assert_int_equal(v->size, strlen(value));
    assert_memory_equal(v->ptr, value, v->size);
    clst_secret_free(v);
    clst_vault_object_cleanup(&o);
}

static void
test_store_under_hsm(void **state)
{
    struct fixture *f = *state;
    struct clst_pkcs11_config c = config(f);
    struct clst_vault_masterkey *mk = NULL, *file_mk = NULL;
    struct clst_vault_store *s = NULL;
    struct clst_err err;

    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c, &mk, &err), CLST_OK);
    assert_int_equal(store_open(f, mk, &s, &err), CLST_OK);
    put_secret(s, "db-password", "correct horse battery staple");
    clst_vault_store_close(s);
    clst_vault_masterkey_free(mk);

    mk = NULL;
    s = NULL;
    c.create_key = false;
    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c, &mk, &err), CLST_OK);
    assert_int_equal(store_open(f, mk, &s, &err), CLST_OK);
    expect_secret(s, "db-password", "correct horse battery staple");
    clst_vault_store_close(s);
    s = NULL;

    /* A file key cannot open the database the HSM key made. */
    assert_int_equal(clst_vault_masterkey_file_create(f->mkfile, &err), CLST_OK);
    assert_int_equal(clst_vault_masterkey_file_load(f->mkfile, &file_mk, &err), CLST_OK);
    assert_int_equal(store_open(f, file_mk, &s, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, clst_vault_masterkey_id(mk)));
    clst_vault_masterkey_free(file_mk);
    clst_vault_masterkey_free(mk);
}

/* ---- rewrap --------------------------------------------------------------------------------- */

/* A provider that forwards to another one and fails after `budget` wraps: an HSM that goes
 * away in the middle of a rewrap. */
struct flaky {
    struct clst_vault_masterkey *real;
    int budget;
};

static enum clst_status
flaky_wrap(void *ctx, const uint8_t *key, size_t key_size, uint8_t *out, size_t out_cap,
           size_t *out_size, struct clst_err *err)
{
    struct flaky *f = ctx;
    if (f->budget-- <= 0) {
        return clst_err_set(err, CLST_E_IO, "HSM: C_WrapKey failed: CKR_DEVICE_REMOVED");
    }
    return clst_vault_masterkey_wrap(f->real, key, key_size, out, out_cap, out_size, err);
}

static enum clst_status
flaky_unwrap(void *ctx, const uint8_t *blob, size_t blob_size, uint8_t *out, size_t out_cap,
             size_t *out_size, struct clst_err *err)
{
    struct flaky *f = ctx;
    return clst_vault_masterkey_unwrap(f->real, blob, blob_size, out, out_cap, out_size, err);
}

static const struct clst_vault_masterkey_ops FLAKY_OPS = {
    .name = "flaky", .wrap = flaky_wrap, .unwrap = flaky_unwrap, .free = NULL};

/* Every stored byte that a rewrap may touch, as one string (to compare before and after). */
static char *
dump_wrapping(const char *db)
{
    sqlite3 *h = NULL;
    sqlite3_stmt *st = NULL;
    struct clst_buf b;
    clst_buf_init(&b, 1 << 20);
    assert_int_equal(sqlite3_open_v2(db, &h, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(h,
                           "SELECT 'v', seq, mk_id, hex(wrapped_key), hex(ciphertext), "
                           "hex(mac) FROM versions UNION ALL SELECT 'm', name, '', "
                           "hex(value), '', hex(mac) FROM meta ORDER BY 1, 2",
                           -1, &st, NULL),
        SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW) {
        for (int i = 0; i < 6; i++) {
            const char *t = (const char *)sqlite3_column_text(st, i);
            assert_int_equal(clst_buf_append(&b, t != NULL ? t : "-", t != NULL ? strlen(t) : 1),
                             CLST_OK);
            assert_int_equal(clst_buf_append_byte(&b, '|'), CLST_OK);
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(h);
    assert_int_equal(clst_buf_terminate(&b), CLST_OK);
    size_t n = 0;
    return (char *)clst_buf_steal(&b, &n);
}

static void
put_version(struct clst_vault_store *s, const char *name, const char *value, char *version)
{
    struct clst_vault_object o;
    struct clst_err err;
    memset(&o, 0, sizeof(o));
    o.kind = CLST_VAULT_KIND_SECRET;
    snprintf(o.name, sizeof(o.name), "%s", name);
    o.attrs.enabled = true;
    snprintf(o.attrs.recovery_level, sizeof(o.attrs.recovery_level), "Recoverable+Purgeable");
    o.attrs.recoverable_days = 7;
    assert_int_equal(
        clst_vault_store_put(s, &o, (const uint8_t *)value, strlen(value), version, &err), CLST_OK);
}

static void
expect_all(const struct fixture *f, struct clst_vault_masterkey *mk, const char *v1,
           const uint8_t backup[32], bool beta_deleted)
{
    struct clst_vault_store *s = NULL;
    struct clst_err err;
    struct clst_vault_object o;
    struct clst_secret *v = NULL;
    uint8_t b[32];
    assert_int_equal(store_open(f, mk, &s, &err), CLST_OK);
    expect_secret(s, "alpha", "alpha two");
    memset(&o, 0, sizeof(o));
    assert_int_equal(clst_vault_store_get(s, CLST_VAULT_KIND_SECRET, "alpha", v1, &o, &v, &err),
                     CLST_OK);
    assert_int_equal(v->size, strlen("alpha one"));
    assert_memory_equal(v->ptr, "alpha one", v->size);
    clst_secret_free(v);
    clst_vault_object_cleanup(&o);
    if (beta_deleted) {
        /* The deleted secret comes back, and its value opens under this key. */
        assert_int_equal(clst_vault_store_recover(s, CLST_VAULT_KIND_SECRET, "beta", &err),
                         CLST_OK);
    }
    expect_secret(s, "beta", "beta value");
    assert_int_equal(clst_vault_backup_key(s, mk, b, &err), CLST_OK);
    assert_memory_equal(b, backup, 32);
    assert_int_equal(clst_vault_store_check(s, &err), CLST_OK);
    clst_vault_store_close(s);
}

static void
test_rewrap(void **state)
{
    struct fixture *f = *state;
    struct clst_pkcs11_config c = config(f);
    struct clst_vault_masterkey *file_mk = NULL, *hsm = NULL, *flaky_mk = NULL;
    struct clst_vault_store *s = NULL;
    struct clst_err err;
    struct clst_vault_rewrap_stats stats;
    struct clst_vault_sqlite_options opt = {.path = f->db, .busy_timeout_ms = 5000};
    char v1[CLST_VAULT_VERSION_SIZE + 1];
    uint8_t backup[32];

    /* A vault under a file key: two versions, a deleted secret, the key-backup key. */
    assert_int_equal(clst_vault_masterkey_file_create(f->mkfile, &err), CLST_OK);
    assert_int_equal(clst_vault_masterkey_file_load(f->mkfile, &file_mk, &err), CLST_OK);
    assert_int_equal(clst_vault_store_rewrap_sqlite(&opt, file_mk, file_mk, &stats, &err),
                     CLST_E_INVAL);
    assert_int_equal(store_open(f, file_mk, &s, &err), CLST_OK);
    put_version(s, "alpha", "alpha one", v1);
    put_version(s, "alpha", "alpha two", NULL);
    put_version(s, "beta", "beta value", NULL);
    assert_int_equal(clst_vault_store_delete(s, CLST_VAULT_KIND_SECRET, "beta", 7, NULL, &err),
                     CLST_OK);
    assert_int_equal(clst_vault_backup_key(s, file_mk, backup, &err), CLST_OK);
    clst_vault_store_close(s);
    s = NULL;

    assert_int_equal(clst_vault_masterkey_pkcs11_open(&c, &hsm, &err), CLST_OK);
    char *before = dump_wrapping(f->db);

    /* An HSM that fails midway (after 0..3 of the 5 wraps: before the transaction, and at
     * several points inside it): nothing changes. */
    for (int budget = 0; budget < 4; budget++) {
        struct flaky fl = {.real = hsm, .budget = budget};
        assert_int_equal(clst_vault_masterkey_new(&FLAKY_OPS, &fl, "flaky:1", &flaky_mk), CLST_OK);
        assert_int_equal(clst_vault_store_rewrap_sqlite(&opt, file_mk, flaky_mk, &stats, &err),
                         CLST_E_IO);
        assert_non_null(strstr(err.msg, "CKR_DEVICE_REMOVED"));
        clst_vault_masterkey_free(flaky_mk);
        flaky_mk = NULL;
        char *after = dump_wrapping(f->db);
        assert_string_equal(after, before);
        free(after);
    }
    expect_all(f, file_mk, v1, backup, true);
    /* expect_all recovered beta; delete it again for the real run. */
    assert_int_equal(store_open(f, file_mk, &s, &err), CLST_OK);
    assert_int_equal(clst_vault_store_delete(s, CLST_VAULT_KIND_SECRET, "beta", 7, NULL, &err),
                     CLST_OK);
    clst_vault_store_close(s);
    s = NULL;
    free(before);
    before = dump_wrapping(f->db);

    /* The wrong "from" key: refused, nothing changed. */
    {
        struct clst_vault_masterkey *other = NULL;
        char other_path[256];
        snprintf(other_path, sizeof(other_path), "%s/other.key", f->dir);
        assert_int_equal(clst_vault_masterkey_file_create(other_path, &err), CLST_OK);
        assert_int_equal(clst_vault_masterkey_file_load(other_path, &other, &err), CLST_OK);
        assert_int_equal(clst_vault_store_rewrap_sqlite(&opt, other, hsm, &stats, &err),
                         CLST_E_VERIFY);
        clst_vault_masterkey_free(other);
        char *after = dump_wrapping(f->db);
        assert_string_equal(after, before);
        free(after);
    }

    /* The real rewrap. */
    memset(&stats, 0, sizeof(stats));
    assert_int_equal(clst_vault_store_rewrap_sqlite(&opt, file_mk, hsm, &stats, &err), CLST_OK);
    assert_int_equal(stats.versions, 3);
    assert_int_equal(stats.settings, 2); /* integrity key + key-backup key */
    char *after = dump_wrapping(f->db);
    assert_string_not_equal(after, before);
    assert_non_null(strstr(after, clst_vault_masterkey_id(hsm)));
    assert_null(strstr(after, clst_vault_masterkey_id(file_mk)));
    free(after);
    /* Everything reads back under the HSM key; the file key no longer opens the vault. */
    assert_int_equal(store_open(f, file_mk, &s, &err), CLST_E_VERIFY);
    expect_all(f, hsm, v1, backup, true);
    /* Again: already done. */
    assert_int_equal(clst_vault_store_rewrap_sqlite(&opt, file_mk, hsm, &stats, &err),
                     CLST_E_CONFLICT);
    assert_non_null(strstr(err.msg, "already"));

    /* And back to the file key. */
    assert_int_equal(clst_vault_store_rewrap_sqlite(&opt, hsm, file_mk, &stats, &err), CLST_OK);
    assert_int_equal(stats.versions, 3);
    expect_all(f, file_mk, v1, backup, false);

    /* No database. */
    opt.path = "/nonexistent-dir/vault.db";
    assert_int_equal(clst_vault_store_rewrap_sqlite(&opt, file_mk, hsm, &stats, &err),
                     CLST_E_NOTFOUND);
    free(before);
    clst_vault_masterkey_free(hsm);
    clst_vault_masterkey_free(file_mk);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create_find_and_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_attributes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_blobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failing_device_is_not_bad_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_token_cannot_unwrap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_same_token_twice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unavailable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_under_hsm, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rewrap, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
