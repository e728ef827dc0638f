/*
 * JWS compact serialization (RFC 7515) for the nine RS/PS/ES algorithms of RFC 7518.
 *
 * Trust boundary: a compact JWS is untrusted text. Before cjose sees it we check everything cjose
 * is lenient about (found by testing libcjose 0.6.2.1):
 *   - cjose's base64url decoder accepts non-canonical encodings (non-zero unused bits) and "="
 *     padding; we decode all three segments with core's strict decoder first;
 *   - cjose splits at the first two dots only; we require exactly three segments;
 *   - cjose's ECDSA verification takes r and s as the two halves of whatever signature length it
 *     is given, so a signature with zero-prefixed r and s (66 bytes for ES256) verifies; we
 *     require exactly 2 * the curve's coordinate size, and for RS/PS exactly the modulus size
 *     (RFC 8017 §8.1.2/§8.2.2 step 1);
 *   - cjose chooses the algorithm from the header and accepts "crit": ["alg","cty"]; we pin the
 *     algorithm to the key and refuse any "crit" and "b64";
 *   - cjose parses the header without rejecting duplicate members; we parse it ourselves with
 *     JSON_REJECT_DUPLICATES, so the "alg" we check is the only one.
 * After those checks cjose's verification is exact for all nine algorithms (RS: OpenSSL's
 * RSA_verify compares the full DigestInfo; PS: salt length = hash length as RFC 7518 §3.5
 * requires; ES: OpenSSL checks 0 < r, s < n), so the signature itself is checked by cjose
 * (cjose_jws_import + cjose_jws_verify) over the original bytes of the token.
 */
#include "jose_int.h"

#include <string.h>

/* ---- algorithms ----------------------------------------------------------------------------- */

static const struct {
    enum clst_jws_alg alg;
    const char *name;
    enum clst_hash hash;
    enum clst_key_kind kind;
} algs[] = {
    {CLST_JWS_RS256, "RS256", CLST_HASH_SHA256, CLST_KEY_RSA},
    {CLST_JWS_RS384, "RS384", CLST_HASH_SHA384, CLST_KEY_RSA},
    {CLST_JWS_RS512, "RS512", CLST_HASH_SHA512, CLST_KEY_RSA},
    {CLST_JWS_PS256, "PS256", CLST_HASH_SHA256, CLST_KEY_RSA},
    {CLST_JWS_PS384, "PS384", CLST_HASH_SHA384, CLST_KEY_RSA},
    {CLST_JWS_PS512, "PS512", CLST_HASH_SHA512, CLST_KEY_RSA},
    {CLST_JWS_ES256, "ES256", CLST_HASH_SHA256, CLST_KEY_EC_P256},
    {CLST_JWS_ES384, "ES384", CLST_HASH_SHA384, CLST_KEY_EC_P384},
    {CLST_JWS_ES512, "ES512", CLST_HASH_SHA512, CLST_KEY_EC_P521},
};
#define ALG_COUNT (sizeof(algs) / sizeof(algs[0]))

const char *
clst_jws_alg_name(enum clst_jws_alg alg)
{
    for (size_t i = 0; i < ALG_COUNT; i++) {
        if (algs[i].alg == alg) {
            return algs[i].name;
        }
    }
    return NULL;
}

enum clst_status
clst_jws_alg_parse(const char *name, enum clst_jws_alg *out)
{
    if (name == NULL || out == NULL) {
        return CLST_E_INVAL;
    }
    for (size_t i = 0; i < ALG_COUNT; i++) {
        if (strcmp(algs[i].name, name) == 0) {
            *out = algs[i].alg;
            return CLST_OK;
        }
    }
    return CLST_E_NOTFOUND;
}

enum clst_hash
clst_jws_alg_hash(enum clst_jws_alg alg)
{
    for (size_t i = 0; i < ALG_COUNT; i++) {
        if (algs[i].alg == alg) {
            return algs[i].hash;
        }
    }
    return (enum clst_hash)0;
}

enum clst_key_kind
clst_jws_alg_key_kind(enum clst_jws_alg alg)
{
    for (size_t i = 0; i < ALG_COUNT; i++) {
        if (algs[i].alg == alg) {
            return algs[i].kind;
        }
    }
    return CLST_KEY_UNKNOWN;
}

/* ASCII case-insensitive equality (strcasecmp is POSIX, not C11). */
static bool
eq_nocase(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++) {
        int ca = (unsigned char)*a, cb = (unsigned char)*b;
        if (ca >= 'A' && ca <= 'Z') {
            ca += 'a' - 'A';
        }
        if (cb >= 'A' && cb <= 'Z') {
            cb += 'a' - 'A';
        }
        if (ca != cb) {
            return false;
        }
    }
    return *a == *b;
}

/* ---- parsing -------------------------------------------------------------------------------- */

struct compact {
    const char *seg[3]; /* header, payload, signature (base64url, not NUL-terminated) */
    size_t len[3];
};

static enum clst_status
split_compact(const char *s, size_t size, struct compact *c, struct clst_err *err)
{
    size_t start = 0;
    int n = 0;

    if (s == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "no token given");
    }
    if (size == 0) {
        return clst_err_set(err, CLST_E_MALFORMED, "the token is empty");
    }
    if (size > CLST_JWS_MAX_SIZE) {
        return clst_err_set(err, CLST_E_LIMIT, "the token is %zu bytes, more than the limit of %d",
                            size, CLST_JWS_MAX_SIZE);
    }
    for (size_t i = 0; i <= size; i++) {
        if (i == size || s[i] == '.') {
            if (n == 3) {
                return clst_err_set(err, CLST_E_MALFORMED,
                                    "the token has more than three '.'-separated segments (only "
                                    "compact JWS is accepted, not JWE)");
            }
            c->seg[n] = s + start;
            c->len[n] = i - start;
            n++;
            start = i + 1;
        }
    }
    if (n != 3) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "a compact JWS has three '.'-separated segments; this token has %d", n);
    }
    if (c->len[0] == 0) {
        return clst_err_set(err, CLST_E_MALFORMED, "the token's protected header is empty");
    }
    if (c->len[2] == 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "the token has no signature (unsigned tokens are never accepted)");
    }
    return CLST_OK;
}

/* Strictly decodes one segment into `out` (whose max bounds it). */
static enum clst_status
decode_segment(const struct compact *c, int i, struct clst_buf *out, struct clst_err *err)
{
    static const char *const names[] = {"protected header", "payload", "signature"};
    enum clst_status rc = clst_b64url_decode(c->seg[i], c->len[i], out);
    if (rc == CLST_E_LIMIT) {
        return clst_err_set(err, rc, "the token's %s is larger than %zu bytes", names[i], out->max);
    }
    if (rc != CLST_OK) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "the token's %s is not canonical base64url (RFC 7515 §2: no padding, "
                            "no whitespace, no unused bits)",
                            names[i]);
    }
    return CLST_OK;
}

static enum clst_status
parse_header(const struct compact *c, json_t **out, struct clst_err *err)
{
    enum clst_status rc;
    struct clst_buf b;
    json_t *hdr = NULL;

    clst_buf_init(&b, CLST_JWS_MAX_HEADER_SIZE);
    if ((rc = decode_segment(c, 0, &b, err)) != CLST_OK) {
        goto out;
    }
    if (b.size == 0 || b.data == NULL) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "the token's protected header is empty");
        goto out;
    }
    rc = jose_json_load((const char *)b.data, b.size, CLST_JWS_MAX_HEADER_SIZE,
                        "the token's protected header", &hdr, err);
    if (rc != CLST_OK) {
        goto out;
    }
    if (!json_is_object(hdr)) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "the token's protected header is not an object");
        goto out;
    }
    *out = hdr;
    hdr = NULL;
    rc = CLST_OK;
out:
    json_decref(hdr);
    clst_buf_cleanup(&b);
    return rc;
}

/* A string header member without NUL characters, or NULL when absent. */
static enum clst_status
header_string(const json_t *hdr, const char *name, const char **out, struct clst_err *err)
{
    json_t *v = json_object_get(hdr, name);
    if (v == NULL) {
        *out = NULL;
        return CLST_OK;
    }
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "the token's header member \"%s\" must be a string", name);
    }
    *out = json_string_value(v);
    return CLST_OK;
}

/* The algorithm policy of the header, independent of the key. */
static enum clst_status
check_header(const json_t *hdr, enum clst_jws_alg *out_alg, const char **out_kid,
             struct clst_err *err)
{
    enum clst_status rc;
    const char *name = NULL, *kid = NULL;
    enum clst_jws_alg alg;

    if ((rc = header_string(hdr, "alg", &name, err)) != CLST_OK) {
        return rc;
    }
    if (name == NULL) {
        return clst_err_set(err, CLST_E_MALFORMED, "the token's header has no \"alg\"");
    }
    if (eq_nocase(name, "none")) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "the token's alg is \"%s\": unsigned tokens are never accepted", name);
    }
    if ((name[0] == 'H' || name[0] == 'h') && (name[1] == 'S' || name[1] == 's')) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "the token's alg is the HMAC algorithm \"%.32s\", which is never "
                            "accepted (a public key must not serve as an HMAC secret)",
                            name);
    }
    if (clst_jws_alg_parse(name, &alg) != CLST_OK) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "the token's alg \"%.32s\" is not supported (RS/PS/ES 256/384/512)",
                            name);
    }
    if (json_object_get(hdr, "crit") != NULL) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "the token's header lists critical extensions (\"crit\") and "
                            "Cloister understands none, so it must reject the token (RFC 7515 "
                            "§4.1.11)");
    }
    if (json_object_get(hdr, "b64") != NULL) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "the token uses RFC 7797 \"b64\", which is not accepted");
    }
    if ((rc = header_string(hdr, "kid", &kid, err)) != CLST_OK) {
        return rc;
    }
    *out_alg = alg;
    *out_kid = kid;
    return CLST_OK;
}

/* The exact signature size the key's algorithm produces. */
static size_t
signature_size(const struct clst_jwk *jwk)
{
    switch (jwk->kind) {
    case CLST_KEY_RSA: {
        int n = EVP_PKEY_get_size(jwk->pkey);
        return n > 0 ? (size_t)n : 0;
    }
    case CLST_KEY_EC_P256:
        return 2 * 32;
    case CLST_KEY_EC_P384:
        return 2 * 48;
    case CLST_KEY_EC_P521:
        return 2 * 66;
    case CLST_KEY_UNKNOWN:
        break;
    }
    return 0;
}

/* Verifies the parsed token `c` (whose text is compact/size) with jwk. */
static enum clst_status
verify_with(const char *compact, size_t size, const struct compact *c, enum clst_jws_alg alg,
            const char *kid, const struct clst_jwk *jwk, struct clst_buf *out_payload,
            struct clst_err *err)
{
    enum clst_status rc;
    struct clst_buf sig, payload;
    cjose_jws_t *jws = NULL;
    cjose_err cerr;
    uint8_t *pt = NULL;
    size_t pt_size = 0;

    clst_buf_init(&sig, 1024);
    clst_buf_init(&payload, CLST_JWS_MAX_SIZE);
    if ((rc = jose_jwk_check_usable(jwk, JOSE_OP_VERIFY, err)) != CLST_OK) {
        goto out;
    }
    if (alg != jwk->alg) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "the token's alg %s does not match the key's algorithm %s",
                          clst_jws_alg_name(alg), clst_jws_alg_name(jwk->alg));
        goto out;
    }
    if (kid != NULL && jwk->kid != NULL && strcmp(kid, jwk->kid) != 0) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "the token's kid \"%.64s\" does not match the key's kid \"%.64s\"", kid,
                          jwk->kid);
        goto out;
    }
    if ((rc = decode_segment(c, 2, &sig, err)) != CLST_OK ||
        (rc = decode_segment(c, 1, &payload, err)) != CLST_OK) {
        goto out;
    }
    size_t want = signature_size(jwk);
    if (sig.size != want) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "the signature is %zu bytes; %s with this key produces exactly %zu",
                          sig.size, clst_jws_alg_name(alg), want);
        goto out;
    }
    memset(&cerr, 0, sizeof(cerr));
    jws = cjose_jws_import(compact, size, &cerr);
    if (jws == NULL) {
        rc = clst_err_set(err, cerr.code == CJOSE_ERR_NO_MEMORY ? CLST_E_NOMEM : CLST_E_MALFORMED,
                          "cjose could not parse the token: %s",
                          cerr.message != NULL ? cerr.message : "unknown error");
        goto out;
    }
    if (!cjose_jws_verify(jws, jwk->cj, &cerr)) {
        rc = clst_err_set(err, cerr.code == CJOSE_ERR_NO_MEMORY ? CLST_E_NOMEM : CLST_E_VERIFY,
                          "the token's %s signature does not verify with the key%s%s%s",
                          clst_jws_alg_name(alg), jwk->kid != NULL ? " \"" : "",
                          jwk->kid != NULL ? jwk->kid : "", jwk->kid != NULL ? "\"" : "");
        goto out;
    }
    /* Both decoders saw the same canonical text, so they must agree; check rather than trust. */
    if (!cjose_jws_get_plaintext(jws, &pt, &pt_size, &cerr) || pt_size != payload.size ||
        (pt_size > 0 && memcmp(pt, payload.data, pt_size) != 0)) {
        rc = clst_err_set(err, CLST_E_INTERNAL, "cjose and Cloister decoded different payloads");
        goto out;
    }
    if (payload.size > 0 &&
        (rc = clst_buf_append(out_payload, payload.data, payload.size)) != CLST_OK) {
        rc = clst_err_set(err, rc, "the token's payload (%zu bytes) does not fit the output",
                          payload.size);
        goto out;
    }
    rc = CLST_OK;
out:
    cjose_jws_release(jws);
    clst_buf_cleanup(&sig);
    clst_buf_cleanup(&payload);
    return rc;
}

static enum clst_status
verify_common(const char *compact, size_t size, const struct clst_jwk *jwk,
              const struct clst_jwks *jwks, struct clst_buf *out_payload, json_t **out_header,
              const struct clst_jwk **out_key, struct clst_err *err)
{
    enum clst_status rc;
    struct compact c;
    json_t *hdr = NULL;
    enum clst_jws_alg alg = CLST_JWS_ALG_NONE;
    const char *kid = NULL;

    if (out_payload == NULL || (jwk == NULL && jwks == NULL)) {
        return clst_err_set(err, CLST_E_INVAL, "JWS verification needs a key and a payload buffer");
    }
    if ((rc = split_compact(compact, size, &c, err)) != CLST_OK) {
        return rc;
    }
    if ((rc = parse_header(&c, &hdr, err)) != CLST_OK) {
        return rc;
    }
    if ((rc = check_header(hdr, &alg, &kid, err)) != CLST_OK) {
        goto out;
    }
    if (jwks != NULL) {
        if (kid != NULL) {
            jwk = clst_jwks_find(jwks, kid);
            if (jwk == NULL) {
                rc = clst_err_set(err, CLST_E_NOTFOUND,
                                  "unknown kid \"%.64s\": no key of the set has it (refresh the "
                                  "issuer's key set if it rotated its keys)",
                                  kid);
                goto out;
            }
        } else if (clst_jwks_count(jwks) == 1) {
            jwk = clst_jwks_get(jwks, 0);
        } else {
            rc = clst_err_set(err, CLST_E_NOTFOUND,
                              "unknown kid: the token names no kid and the key set holds %zu "
                              "keys",
                              clst_jwks_count(jwks));
            goto out;
        }
    }
    if ((rc = verify_with(compact, size, &c, alg, kid, jwk, out_payload, err)) != CLST_OK) {
        goto out;
    }
    if (out_header != NULL) {
        *out_header = hdr;
        hdr = NULL;
    }
    if (out_key != NULL) {
        *out_key = jwk;
    }
    rc = CLST_OK;
out:
    json_decref(hdr);
    return rc;
}

enum clst_status
clst_jws_verify(const char *compact, size_t size, const struct clst_jwk *jwk,
                struct clst_buf *out_payload, json_t **out_header, struct clst_err *err)
{
    if (jwk == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_jws_verify: no key");
    }
    return verify_common(compact, size, jwk, NULL, out_payload, out_header, NULL, err);
}

enum clst_status
clst_jws_verify_jwks(const char *compact, size_t size, const struct clst_jwks *jwks,
                     struct clst_buf *out_payload, json_t **out_header,
                     const struct clst_jwk **out_key, struct clst_err *err)
{
    if (jwks == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_jws_verify_jwks: no key set");
    }
    return verify_common(compact, size, NULL, jwks, out_payload, out_header, out_key, err);
}

enum clst_status
clst_jws_header_unverified(const char *compact, size_t size, json_t **out, struct clst_err *err)
{
    enum clst_status rc;
    struct compact c;
    struct clst_buf scratch;
    json_t *hdr = NULL;

    if (out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_jws_header_unverified: NULL argument");
    }
    if ((rc = split_compact(compact, size, &c, err)) != CLST_OK) {
        return rc;
    }
    clst_buf_init(&scratch, CLST_JWS_MAX_SIZE);
    if ((rc = parse_header(&c, &hdr, err)) != CLST_OK ||
        (rc = decode_segment(&c, 1, &scratch, err)) != CLST_OK) {
        goto out;
    }
    clst_buf_reset(&scratch);
    if ((rc = decode_segment(&c, 2, &scratch, err)) != CLST_OK) {
        goto out;
    }
    *out = hdr;
    hdr = NULL;
    rc = CLST_OK;
out:
    json_decref(hdr);
    clst_buf_cleanup(&scratch);
    return rc;
}

/* ---- signing -------------------------------------------------------------------------------- */

static enum clst_status
build_header(const struct clst_jwk *jwk, const json_t *extra, json_t **out, struct clst_err *err)
{
    enum clst_status rc = CLST_E_NOMEM;
    json_t *hdr = NULL, *copy = NULL;

    hdr = json_object();
    if (hdr == NULL ||
        json_object_set_new(hdr, "alg", json_string(clst_jws_alg_name(jwk->alg))) != 0) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    if (jwk->kid != NULL && json_object_set_new(hdr, "kid", json_string(jwk->kid)) != 0) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    if (extra != NULL) {
        if (!json_is_object(extra)) {
            rc = clst_err_set(err, CLST_E_INVAL, "the extra JWS header must be a JSON object");
            goto out;
        }
        copy = json_deep_copy(extra);
        if (copy == NULL) {
            rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
            goto out;
        }
        for (void *it = json_object_iter(copy); it != NULL; it = json_object_iter_next(copy, it)) {
            const char *key = json_object_iter_key(it);
            json_t *value = json_object_iter_value(it);
            if (strcmp(key, "alg") == 0 || strcmp(key, "crit") == 0 || strcmp(key, "b64") == 0) {
                rc = clst_err_set(err, CLST_E_INVAL,
                                  "the extra JWS header may not set \"%s\" (the key decides the "
                                  "algorithm; extensions are not supported)",
                                  key);
                goto out;
            }
            if (strcmp(key, "kid") == 0) {
                if (!json_is_string(value)) {
                    rc = clst_err_set(err, CLST_E_INVAL, "the extra header's kid is not a string");
                    goto out;
                }
                if (jwk->kid != NULL && strcmp(json_string_value(value), jwk->kid) != 0) {
                    rc = clst_err_set(err, CLST_E_INVAL,
                                      "the extra header's kid differs from the key's kid \"%s\"",
                                      jwk->kid);
                    goto out;
                }
            }
            if (json_object_set(hdr, key, value) != 0) {
                rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
                goto out;
            }
        }
    }
    *out = hdr;
    hdr = NULL;
    rc = CLST_OK;
out:
    json_decref(copy);
    json_decref(hdr);
    return rc;
}

enum clst_status
clst_jws_sign(const struct clst_jwk *jwk, const json_t *extra_header, const void *payload,
              size_t payload_size, char **out_compact, struct clst_err *err)
{
    static const uint8_t empty[1] = {0};
    enum clst_status rc;
    json_t *hdr = NULL;
    cjose_jws_t *jws = NULL;
    cjose_err cerr;
    const char *ser = NULL;

    if (jwk == NULL || out_compact == NULL || (payload == NULL && payload_size > 0)) {
        return clst_err_set(err, CLST_E_INVAL, "clst_jws_sign: NULL argument");
    }
    if ((rc = jose_jwk_check_usable(jwk, JOSE_OP_SIGN, err)) != CLST_OK) {
        return rc;
    }
    if (payload_size > CLST_JWS_MAX_SIZE) {
        return clst_err_set(err, CLST_E_LIMIT, "a payload of %zu bytes cannot fit a %d-byte JWS",
                            payload_size, CLST_JWS_MAX_SIZE);
    }
    if ((rc = build_header(jwk, extra_header, &hdr, err)) != CLST_OK) {
        return rc;
    }
    memset(&cerr, 0, sizeof(cerr));
    jws = cjose_jws_sign(jwk->cj, hdr, payload_size > 0 ? (const uint8_t *)payload : empty,
                         payload_size, &cerr);
    if (jws == NULL || !cjose_jws_export(jws, &ser, &cerr) || ser == NULL) {
        rc = clst_err_set(err, cerr.code == CJOSE_ERR_NO_MEMORY ? CLST_E_NOMEM : CLST_E_CRYPTO,
                          "cjose could not sign: %s",
                          cerr.message != NULL ? cerr.message : "unknown error");
        goto out;
    }
    size_t len = strlen(ser);
    if (len > CLST_JWS_MAX_SIZE) {
        rc = clst_err_set(err, CLST_E_LIMIT, "the JWS would be %zu bytes, more than the limit %d",
                          len, CLST_JWS_MAX_SIZE);
        goto out;
    }
    char *copy = malloc(len + 1);
    if (copy == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    memcpy(copy, ser, len + 1);
    *out_compact = copy;
    rc = CLST_OK;
out:
    cjose_jws_release(jws);
    json_decref(hdr);
    return rc;
}
