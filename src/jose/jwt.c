/*
 * JSON Web Tokens (RFC 7519): signing claims, verifying a token and validating the registered
 * claims "exp", "nbf", "iat", "iss" and "aud" against an injected clock.
 *
 * Trust boundary: the claims come from a verified JWS payload, but their types are still
 * checked: dates must be JSON numbers in a sane range (a string "exp" is malformed, not ignored),
 * "aud" a string or an array of strings.
 */
#include "jose_int.h"

#include <math.h>
#include <string.h>

#define JWT_MAX_DATE INT64_C(253402300799) /* 9999-12-31T23:59:59Z */
#define JWT_MAX_AUD  64                    /* entries of an "aud" array */

/*
 * Formats t (seconds, possibly fractional) for a message, in whole seconds. Claim values are
 * non-negative (checked) and "now" is integral, so truncation is rounding down (and no libm).
 */
static void
fmt_time(double t, char *out, size_t cap)
{
    if (clst_time_format((int64_t)t, out, cap) != CLST_OK) {
        (void)snprintf(out, cap, "%.0f", t);
    }
}

/*
 * A NumericDate claim: *present false when absent; otherwise a number in 0..JWT_MAX_DATE
 * (integers and fractional seconds; RFC 7519 §2).
 */
static enum clst_status
get_date(const json_t *claims, const char *name, bool *present, double *out, struct clst_err *err)
{
    json_t *v = json_object_get(claims, name);
    *present = false;
    if (v == NULL) {
        return CLST_OK;
    }
    if (!json_is_number(v)) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "the token's \"%s\" claim must be a number of seconds since the "
                            "epoch",
                            name);
    }
    double t = json_number_value(v);
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0 || i > JWT_MAX_DATE) {
            return clst_err_set(err, CLST_E_MALFORMED,
                                "the token's \"%s\" claim (%lld) is out of range", name,
                                (long long)i);
        }
        t = (double)i;
    } else if (!isfinite(t) || t < 0.0 || t > (double)JWT_MAX_DATE) {
        return clst_err_set(err, CLST_E_MALFORMED, "the token's \"%s\" claim (%g) is out of range",
                            name, t);
    }
    *present = true;
    *out = t;
    return CLST_OK;
}

static enum clst_status
check_audience(const json_t *claims, const char *want, struct clst_err *err)
{
    json_t *aud = json_object_get(claims, "aud");
    if (aud == NULL) {
        if (want != NULL) {
            return clst_err_set(err, CLST_E_VERIFY,
                                "the token has no \"aud\" claim but audience \"%s\" is required",
                                want);
        }
        return CLST_OK;
    }
    if (json_is_string(aud)) {
        if (strlen(json_string_value(aud)) != json_string_length(aud)) {
            return clst_err_set(err, CLST_E_MALFORMED, "the token's \"aud\" contains a NUL");
        }
        if (want == NULL) {
            return clst_err_set(err, CLST_E_VERIFY,
                                "the token is for audience \"%.64s\" but no audience is "
                                "configured here (RFC 7519 §4.1.3)",
                                json_string_value(aud));
        }
        if (strcmp(json_string_value(aud), want) != 0) {
            return clst_err_set(err, CLST_E_VERIFY,
                                "the token is for audience \"%.64s\", not \"%.64s\"",
                                json_string_value(aud), want);
        }
        return CLST_OK;
    }
    if (!json_is_array(aud) || json_array_size(aud) == 0 || json_array_size(aud) > JWT_MAX_AUD) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "the token's \"aud\" must be a string or an array of 1..%d strings",
                            JWT_MAX_AUD);
    }
    bool found = false;
    for (size_t i = 0; i < json_array_size(aud); i++) {
        json_t *v = json_array_get(aud, i);
        if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
            return clst_err_set(err, CLST_E_MALFORMED, "the token's \"aud\"[%zu] is not a string",
                                i);
        }
        if (want != NULL && strcmp(json_string_value(v), want) == 0) {
            found = true;
        }
    }
    if (want == NULL) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "the token names %zu audiences but no audience is configured here "
                            "(RFC 7519 §4.1.3)",
                            json_array_size(aud));
    }
    if (!found) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "the token's audiences (%zu, first \"%.64s\") do not include \"%.64s\"",
                            json_array_size(aud), json_string_value(json_array_get(aud, 0)), want);
    }
    return CLST_OK;
}

enum clst_status
clst_jwt_validate(const json_t *claims, const struct clst_jwt_expect *expect, struct clst_err *err)
{
    enum clst_status rc;
    bool has_exp = false, has_nbf = false, has_iat = false;
    double exp = 0, nbf = 0, iat = 0;
    char a[32], b[32];

    if (claims == NULL || expect == NULL || expect->clock == NULL || expect->clock->now == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "JWT validation needs claims and a clock");
    }
    if (expect->skew < 0 || expect->skew > CLST_JWT_MAX_SKEW) {
        return clst_err_set(err, CLST_E_INVAL, "clock skew %lld s is outside 0..%d s",
                            (long long)expect->skew, CLST_JWT_MAX_SKEW);
    }
    if (!json_is_object(claims)) {
        return clst_err_set(err, CLST_E_MALFORMED, "the token's claims are not a JSON object");
    }
    if ((rc = get_date(claims, "exp", &has_exp, &exp, err)) != CLST_OK ||
        (rc = get_date(claims, "nbf", &has_nbf, &nbf, err)) != CLST_OK ||
        (rc = get_date(claims, "iat", &has_iat, &iat, err)) != CLST_OK) {
        return rc;
    }
    int64_t now_i = clst_clock_now(expect->clock);
    double now = (double)now_i, skew = (double)expect->skew;
    long long skew_ll = (long long)expect->skew;

    if (!has_exp && expect->require_exp) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "the token has no \"exp\" claim but an expiry is required");
    }
    if (!has_iat && expect->require_iat) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "the token has no \"iat\" claim but an issue time is required");
    }
    fmt_time(now, b, sizeof(b));
    if (has_exp && now >= exp + skew) {
        fmt_time(exp, a, sizeof(a));
        return clst_err_set(err, CLST_E_VERIFY,
                            "token expired at %s, now %s (skew %lld s): obtain a new token", a, b,
                            skew_ll);
    }
    if (has_nbf && now + skew < nbf) {
        fmt_time(nbf, a, sizeof(a));
        return clst_err_set(err, CLST_E_VERIFY,
                            "token not valid before %s, now %s (skew %lld s): check the clocks", a,
                            b, skew_ll);
    }
    if (has_iat && iat > now + skew) {
        fmt_time(iat, a, sizeof(a));
        return clst_err_set(err, CLST_E_VERIFY,
                            "token issued in the future at %s, now %s (skew %lld s): check the "
                            "issuer's clock",
                            a, b, skew_ll);
    }
    if (expect->issuer != NULL) {
        json_t *iss = json_object_get(claims, "iss");
        if (iss == NULL) {
            return clst_err_set(err, CLST_E_VERIFY,
                                "the token has no \"iss\" claim; issuer \"%.64s\" is required",
                                expect->issuer);
        }
        if (!json_is_string(iss) || strlen(json_string_value(iss)) != json_string_length(iss)) {
            return clst_err_set(err, CLST_E_MALFORMED, "the token's \"iss\" is not a string");
        }
        if (strcmp(json_string_value(iss), expect->issuer) != 0) {
            return clst_err_set(err, CLST_E_VERIFY,
                                "the token's issuer \"%.64s\" is not the expected \"%.64s\"",
                                json_string_value(iss), expect->issuer);
        }
    }
    return check_audience(claims, expect->audience, err);
}

enum clst_status
clst_jwt_sign(const struct clst_jwk *jwk, const json_t *claims, const json_t *extra_header,
              char **out, struct clst_err *err)
{
    enum clst_status rc;
    json_t *hdr = NULL;
    char *text = NULL;

    if (jwk == NULL || claims == NULL || out == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_jwt_sign: NULL argument");
    }
    if (!json_is_object(claims)) {
        return clst_err_set(err, CLST_E_INVAL, "JWT claims must be a JSON object");
    }
    if (extra_header != NULL && !json_is_object(extra_header)) {
        return clst_err_set(err, CLST_E_INVAL, "the extra JWT header must be a JSON object");
    }
    hdr = extra_header != NULL ? json_deep_copy(extra_header) : json_object();
    if (hdr == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    if (json_object_get(hdr, "typ") == NULL &&
        json_object_set_new(hdr, "typ", json_string("JWT")) != 0) {
        rc = clst_err_set(err, CLST_E_NOMEM, "out of memory");
        goto out;
    }
    text = json_dumps(claims, JSON_COMPACT);
    if (text == NULL) {
        rc = clst_err_set(err, CLST_E_NOMEM, "cannot serialize the claims");
        goto out;
    }
    rc = clst_jws_sign(jwk, hdr, text, strlen(text), out, err);
out:
    free(text);
    json_decref(hdr);
    return rc;
}

static enum clst_status
jwt_verify(const char *token, size_t size, const struct clst_jwk *jwk, const struct clst_jwks *jwks,
           const struct clst_jwt_expect *expect, json_t **out_claims, json_t **out_header,
           struct clst_err *err)
{
    enum clst_status rc;
    struct clst_buf payload;
    json_t *hdr = NULL, *claims = NULL;

    if (expect == NULL || out_claims == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "JWT verification needs expectations and output");
    }
    clst_buf_init(&payload, CLST_JWS_MAX_SIZE);
    rc = jwk != NULL ? clst_jws_verify(token, size, jwk, &payload, &hdr, err)
                     : clst_jws_verify_jwks(token, size, jwks, &payload, &hdr, NULL, err);
    if (rc != CLST_OK) {
        goto out;
    }
    if (expect->typ != NULL) {
        json_t *typ = json_object_get(hdr, "typ");
        if (!json_is_string(typ) || strlen(json_string_value(typ)) != json_string_length(typ)) {
            rc = clst_err_set(err, CLST_E_VERIFY,
                              "the token's header has no string \"typ\"; \"%s\" is required",
                              expect->typ);
            goto out;
        }
        const char *t = json_string_value(typ);
        size_t i = 0;
        for (; t[i] != '\0' && expect->typ[i] != '\0'; i++) {
            int x = (unsigned char)t[i], y = (unsigned char)expect->typ[i];
            x = (x >= 'A' && x <= 'Z') ? x + ('a' - 'A') : x;
            y = (y >= 'A' && y <= 'Z') ? y + ('a' - 'A') : y;
            if (x != y) {
                break;
            }
        }
        if (t[i] != '\0' || expect->typ[i] != '\0') {
            rc = clst_err_set(err, CLST_E_VERIFY,
                              "the token's typ \"%.32s\" is not the expected \"%s\"", t,
                              expect->typ);
            goto out;
        }
    }
    if (payload.size == 0) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "the token's payload is empty, not JWT claims");
        goto out;
    }
    rc = jose_json_load((const char *)payload.data, payload.size, CLST_JWS_MAX_SIZE,
                        "the token's claims", &claims, err);
    if (rc != CLST_OK) {
        goto out;
    }
    if ((rc = clst_jwt_validate(claims, expect, err)) != CLST_OK) {
        goto out;
    }
    *out_claims = claims;
    claims = NULL;
    if (out_header != NULL) {
        *out_header = hdr;
        hdr = NULL;
    }
    rc = CLST_OK;
out:
    json_decref(claims);
    json_decref(hdr);
    clst_buf_cleanup(&payload);
    return rc;
}

enum clst_status
clst_jwt_verify(const char *token, size_t size, const struct clst_jwks *jwks,
                const struct clst_jwt_expect *expect, json_t **out_claims, json_t **out_header,
                struct clst_err *err)
{
    if (jwks == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_jwt_verify: no key set");
    }
    return jwt_verify(token, size, NULL, jwks, expect, out_claims, out_header, err);
}

enum clst_status
clst_jwt_verify_jwk(const char *token, size_t size, const struct clst_jwk *jwk,
                    const struct clst_jwt_expect *expect, json_t **out_claims, json_t **out_header,
                    struct clst_err *err)
{
    if (jwk == NULL) {
        return clst_err_set(err, CLST_E_INVAL, "clst_jwt_verify_jwk: no key");
    }
    return jwt_verify(token, size, jwk, NULL, expect, out_claims, out_header, err);
}
