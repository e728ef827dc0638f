/*
 * The PKCS#11 master-key provider: the vault's master key is a non-extractable AES-256 key
 * inside an HSM (any PKCS#11 2.40 module; tested with SoftHSM2), and the 32-byte object keys are
 * wrapped and unwrapped by the HSM with CKM_AES_KEY_WRAP_PAD (AES key wrap with padding,
 * RFC 5649), so the master key never leaves the token.
 *
 * How a wrap works: the object key is imported as a session (not token) CKK_GENERIC_SECRET
 * object, C_WrapKey'd under the master key and the session object destroyed. How an unwrap
 * works: C_UnwrapKey to a session CKK_GENERIC_SECRET object (extractable, not sensitive), its
 * CKA_VALUE read and the object destroyed. The object key is in host memory either way (the
 * vault encrypts values with it); the master key is not.
 *
 * The master key: CKO_SECRET_KEY, CKK_AES, 32 bytes, CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE,
 * not CKA_EXTRACTABLE, CKA_WRAP + CKA_UNWRAP only (no encrypt, decrypt, sign, derive), found by
 * its label; made with C_GenerateKey when missing and `create_key` is set. Its CKA_ID (16
 * random bytes chosen at creation) gives the master-key id "pkcs11:<32 hex>", distinct from any
 * file key's "file:..." id, which the store records with every wrapped key.
 *
 * Threads: the module is initialized with CKF_OS_LOCKING_OK; wrap/unwrap take a session from a
 * mutex-guarded pool (a new one is opened when all are in use), so any number of threads may
 * use the provider at once. The PIN is read from a file (mode 0600, owned by the caller; one
 * trailing newline is stripped), used once for C_Login and wiped.
 */
#ifndef CLOISTER_VAULT_HSM_H
#define CLOISTER_VAULT_HSM_H

#include <stdbool.h>

#include <cloister/core.h>
#include <cloister/vault_store.h>

#define CLST_PKCS11_DEFAULT_KEY_LABEL "cloister-master"
#define CLST_PKCS11_LABEL_MAX         32 /* token labels are 32 bytes, blank padded */
#define CLST_PKCS11_PIN_MAX           256

struct clst_pkcs11_config {
    const char *module;      /* path of the PKCS#11 module (.so) */
    const char *token_label; /* CKA_LABEL of the token; the slot is found by it */
    const char *pin_file;    /* the user PIN (mode 0600); one trailing "\n" or "\r\n" stripped */
    const char *key_label;   /* the master key's label; NULL = CLST_PKCS11_DEFAULT_KEY_LABEL */
    bool create_key;         /* generate the key in the token when none has that label */
};

/*
 * Loads the module, finds the token by label, logs in with the PIN from the file, and finds (or,
 * with create_key, generates) the master key. Refuses, with a message saying what to fix:
 * a module that cannot be loaded (CLST_E_NOTFOUND / CLST_E_IO), no token with that label
 * (CLST_E_NOTFOUND, the message lists the labels present), a PIN file that others may read
 * (CLST_E_DENIED), a wrong PIN (CLST_E_DENIED), a locked PIN, a missing key without create_key
 * (CLST_E_NOTFOUND), two keys with the label (CLST_E_CONFLICT), a key that is extractable or not
 * sensitive or cannot wrap (CLST_E_DENIED), or a token without CKM_AES_KEY_WRAP_PAD
 * (CLST_E_CRYPTO). clst_vault_masterkey_free() logs out, closes the sessions and finalizes the
 * module.
 */
enum clst_status clst_vault_masterkey_pkcs11_open(const struct clst_pkcs11_config *cfg,
                                                  struct clst_vault_masterkey **out,
                                                  struct clst_err *err);

#endif /* CLOISTER_VAULT_HSM_H */
