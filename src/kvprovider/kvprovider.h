/*
 * Cloister kvprovider: an envelope key provider (include/cloister/envelope.h) backed by a key in a
 * Cloister vault (or any service speaking the cloud key vault's REST API), through the libcurl
 * client (include/cloister/client.h).
 *
 *   wrap:   POST /keys/NAME/VERSION/wrapkey   {"alg", "value": the file's 32-byte input key}
 *   unwrap: POST /keys/NAME/VERSION/unwrapkey {"alg", "value": the wrapped key from the header}
 *
 * The header records REF_VAULT (the vault URL, the key name and the resolved version) and the
 * wrap algorithm, so a file stays decryptable after the key is rotated: decryption asks for the
 * version that wrapped it. The input key never leaves the client except to the vault, over the
 * pinned TLS connection.
 *
 * Algorithm: RSA keys RSA-OAEP-256; oct keys A128KW/A192KW/A256KW by their size; EC keys cannot
 * wrap (CLST_E_INVAL when the provider is made). The key must allow wrapKey (encryption) /
 * unwrapKey (decryption) in its key_ops, and the principal needs the keys/wrap / keys/unwrap
 * permissions.
 *
 * (This header sits beside the code because the component owns no public header yet; the CLI
 * includes it as "kvprovider/kvprovider.h". It would belong in include/cloister/ as
 * kvprovider.h.)
 */
#ifndef CLST_KVPROVIDER_H
#define CLST_KVPROVIDER_H

#include <cloister/client.h>
#include <cloister/envelope.h>

/* "vault:NAME" or "vault:NAME/VERSION", the --key syntax of `cloister encrypt`. */
#define CLST_KVPROVIDER_PREFIX "vault:"

/*
 * Parses "vault:NAME[/VERSION]" into name and version (version "" when absent). CLST_E_INVAL
 * with a message when the prefix is missing, the name is not 1..127 of [0-9A-Za-z-] or the
 * version is not 32 hex characters.
 */
enum clst_status clst_kvprovider_parse_ref(const char *ref, char name[static 128],
                                           char version[static 33], struct clst_err *err);

/*
 * A provider for encryption and decryption with the vault key `name` (version NULL or "" = the
 * latest, resolved now with GET /keys/NAME so that the header names a fixed version). The client
 * is made from `cfg` (copied; see clst_client_new) and owned by the provider. Fails when the key
 * cannot be read or cannot wrap (EC key).
 */
enum clst_status clst_kvprovider_new(const struct clst_client_config *cfg, const char *name,
                                     const char *version, struct clst_envelope_provider **out,
                                     struct clst_err *err);

/*
 * A decrypt-only provider that unwraps with whatever vault key a file's header names, in the
 * vault `cfg` points at (the header's URL is not trusted to pick the server: the token only ever
 * goes to cfg->url). A header that names no vault key: CLST_E_NOTFOUND.
 */
enum clst_status clst_kvprovider_any_new(const struct clst_client_config *cfg,
                                         struct clst_envelope_provider **out, struct clst_err *err);

#endif /* CLST_KVPROVIDER_H */
