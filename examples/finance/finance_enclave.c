/*
 * finance-enclave: card-transaction analytics inside a TEE (examples/finance/README.md).
 *
 *   cloister run finance-enclave.so --platform PLAT --attest-url URL --vault-url URL --ca CA \
 *       --token-file TOKEN --in transactions=tx.csv.clst --in owner=owner.pub.pem \
 *       --out report=report.json.clst -- analyze [--token-key NAME]
 *
 * The data owner encrypted the transactions (CSV, see gen_transactions.c) under a vault key
 * (`cloister encrypt --key vault:NAME`), recording in the file's authenticated metadata
 *   owner-key = SHA-256 of the SubjectPublicKeyInfo of the key the report must be encrypted to,
 *   vault-ca  = SHA-256 of the DER of the vault's CA certificate (the vault that releases keys).
 * Inside the enclave:
 *   1. the public key the host hands in as "owner" must be the one the metadata names (checked
 *      first, so that no key is asked for in vain);
 *   2. the vault key named in the file's header is released to this enclave (attestation, then
 *      the vault checks the key's release policy against the enclave's measurement), pinned to
 *      the vault CA the file names; the file is decrypted here, which also authenticates the
 *      header and so both metadata values (a host that edits them makes the decryption fail);
 *   3. the tokenization key (default "finance-tokens", an oct key) is released the same way;
 *   4. per-card spending and per-merchant totals are computed, and two fraud rules run:
 *        velocity   5 or more transactions on one card within 10 minutes
 *        geography  two transactions on one card within 60 minutes in different countries
 *                   and more than 1000 km apart (the city gazetteer in cities.h; a city it does
 *                   not know counts as far)
 *   5. card numbers are replaced by keyed tokens, "tok_" + 16 hex of HMAC-SHA-256(token key,
 *      card number), and a masked number (first 6, last 4, as PCI DSS allows on receipts);
 *   6. the report (JSON) is encrypted to the owner's public key and written to "report".
 * The host sees ciphertext, the attestation traffic and a few counts on stdout; never a card
 * number, a token or an amount. The plaintext is wiped before the buffers are freed.
 *
 * Exit status: 0 done, 1 failure (the reason on stderr), 2 usage, 3 a key release was refused
 * (the vault's reason, naming the failing claim, on stderr).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cloister/enclave.h>
#include <cloister/envelope.h>

#include "cities.h"

#define FIN_INPUT_MAX         (64u * 1024 * 1024) /* encrypted input, bytes */
#define FIN_ROWS_MAX          1000000u
#define FIN_PEM_MAX           (16u * 1024)
#define FIN_REPORT_MAX        (256u * 1024 * 1024)
#define FIN_FIELD_MAX         128
#define FIN_VELOCITY_N        5
#define FIN_VELOCITY_SEC      600
#define FIN_GEO_SEC           3600
#define FIN_GEO_KM            1000.0
#define FIN_EARTH_KM          6371.0
#define FIN_DEFAULT_TOKEN_KEY "finance-tokens"

/* ---- small I/O helpers (the host's files) ------------------------------------------------------
 */

static void eprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
eprintf(const char *fmt, ...)
{
    char line[1024];
    uint32_t h;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return;
    }
    size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    if (clst_enclave_file_open("stderr", CLST_ENCLAVE_FILE_WRITE, &h, NULL) == CLST_OK) {
        (void)clst_enclave_file_write(h, line, len, NULL);
        (void)clst_enclave_file_write(h, "\n", 1, NULL);
    }
}

/* Reads all of host file `name` (at most `max` bytes) into a new buffer. */
static enum clst_status
read_all(const char *name, size_t max, uint8_t **out, size_t *out_size)
{
    uint32_t h;
    struct clst_err err = {0};
    size_t size = 0, cap = 65536;
    uint8_t *buf = malloc(cap);
    if (buf == NULL) {
        return CLST_E_NOMEM;
    }
    enum clst_status st = clst_enclave_file_open(name, CLST_ENCLAVE_FILE_READ, &h, &err);
    while (st == CLST_OK) {
        if (size == cap) {
            if (cap >= max) {
                snprintf(err.msg, sizeof(err.msg), "larger than %zu bytes", max);
                st = CLST_E_LIMIT;
                break;
            }
            uint8_t *p = realloc(buf, cap * 2);
            if (p == NULL) {
                st = CLST_E_NOMEM;
                break;
            }
            buf = p;
            cap *= 2;
        }
        size_t n = 0;
        st = clst_enclave_file_read(h, buf + size, cap - size, &n, &err);
        if (st == CLST_OK && n == 0) {
            *out = buf;
            *out_size = size;
            return CLST_OK;
        }
        size += n;
    }
    eprintf("finance: cannot read input '%s' (offer it with --in %s=PATH): %s", name, name,
            err.msg);
    free(buf);
    return st;
}

static void
hex(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 15];
    }
    out[2 * n] = '\0';
}

/* ---- metadata and keys --------------------------------------------------------------------------
 */

/* The value of metadata entry `name` as a NUL-terminated string (at most cap - 1 bytes). */
static bool
meta_get(const struct clst_envelope_header *h, const char *name, char *out, size_t cap)
{
    for (size_t i = 0; i < h->meta_count; i++) {
        const char *n;
        const uint8_t *v;
        size_t n_size, v_size;
        if (clst_envelope_header_meta(h, i, &n, &n_size, &v, &v_size) != CLST_OK) {
            return false;
        }
        if (n_size == strlen(name) && memcmp(n, name, n_size) == 0) {
            if (v_size >= cap) {
                return false;
            }
            memcpy(out, v, v_size);
            out[v_size] = '\0';
            return true;
        }
    }
    return false;
}

/* Parses 64 hex digits (optionally after "SHA256:") into 32 bytes. */
static bool
parse_sha256(const char *s, uint8_t out[32])
{
    if (strncmp(s, "SHA256:", 7) == 0 || strncmp(s, "sha256:", 7) == 0) {
        s += 7;
    }
    if (strlen(s) != 64) {
        return false;
    }
    for (size_t i = 0; i < 32; i++) {
        int v = 0;
        for (size_t j = 0; j < 2; j++) {
            char c = s[2 * i + j];
            int d = c >= '0' && c <= '9'   ? c - '0'
                    : c >= 'a' && c <= 'f' ? c - 'a' + 10
                    : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                           : -1;
            if (d < 0) {
                return false;
            }
            v = v * 16 + d;
        }
        out[i] = (uint8_t)v;
    }
    return true;
}

/* Releases vault key `name` into this enclave; 3 when the vault or the attestation service
 * refused (the reason names the failing claim), 1 on other failures. */
static int
release(const char *name, struct clst_enclave_released_key *out)
{
    struct clst_err err = {0};
    enum clst_status st = clst_enclave_key_release(name, NULL, out, &err);
    if (st != CLST_OK) {
        eprintf("finance: key release of '%s' failed: %s", name, err.msg);
        return st == CLST_E_DENIED ? 3 : 1;
    }
    return 0;
}

static int owner_key(const struct clst_envelope_header *hdr, EVP_PKEY **out, char fpr_hex[65]);

/*
 * Decrypts the owner's .clst input inside: checks the report recipient the host offers against
 * the one the header names (before asking for any key: a mismatch is refused either way), pins
 * the vault CA the header names, releases the key the header names, and decrypts, which
 * authenticates the header and so both metadata values. Returns the plaintext and the recipient
 * key, or an exit status.
 */
static int
open_input(const char *file, uint8_t **out, size_t *out_size, struct clst_envelope_header *hdr,
           EVP_PKEY **owner, char fpr_hex[65])
{
    uint8_t *ct = NULL, *pt = NULL, ca_pin[32];
    size_t ct_size = 0, pt_size = 0;
    char value[160];
    struct clst_err err = {0};
    struct clst_enclave_released_key key = {0};
    struct clst_envelope_provider *prov = NULL;
    EVP_PKEY *pk = NULL;
    int rc = 1;

    if (read_all(file, FIN_INPUT_MAX, &ct, &ct_size) != CLST_OK) {
        goto out;
    }
    if (clst_envelope_header_parse(ct, ct_size, hdr, &err) != CLST_OK) {
        eprintf("finance: input '%s' is not a .clst file: %s", file, err.msg);
        goto out;
    }
    if (hdr->ref.kind != CLST_ENVELOPE_REF_VAULT) {
        eprintf("finance: input '%s' must be encrypted under a vault key "
                "(cloister encrypt --key vault:NAME), so that only an attested enclave can "
                "open it",
                file);
        goto out;
    }
    if (owner_key(hdr, &pk, fpr_hex) != 0) {
        goto out;
    }
    /* Not yet authenticated: a host that changes it gets a key from another vault, which cannot
     * decrypt the owner's body, so decryption below fails. */
    if (!meta_get(hdr, "vault-ca", value, sizeof(value)) || !parse_sha256(value, ca_pin)) {
        eprintf("finance: input '%s' does not name its vault's CA; encrypt it with --meta "
                "vault-ca=SHA256 (openssl x509 -in ca.pem -outform DER | sha256sum)",
                file);
        goto out;
    }
    if (clst_enclave_key_release_pin(ca_pin) != CLST_OK) {
        eprintf("finance: cannot pin the vault CA");
        goto out;
    }
    rc = release(hdr->ref.key_name, &key);
    if (rc != 0) {
        goto out;
    }
    rc = 1;
    if (clst_enclave_released_key_provider(&key, &prov, &err) != CLST_OK) {
        eprintf("finance: released key '%s' cannot decrypt: %s", hdr->ref.key_name, err.msg);
        goto out;
    }
    pt = malloc(ct_size);
    if (pt == NULL) {
        goto out;
    }
    if (clst_envelope_decrypt_mem(ct, ct_size, pt, ct_size, &pt_size, &prov, 1, 1, &err) !=
        CLST_OK) {
        eprintf("finance: input '%s' does not decrypt with the released key '%s': %s", file,
                hdr->ref.key_name, err.msg);
        goto out;
    }
    *out = pt;
    *out_size = pt_size;
    *owner = pk;
    pt = NULL;
    pk = NULL;
    rc = 0;
out:
    if (pt != NULL) {
        OPENSSL_cleanse(pt, ct_size);
        free(pt);
    }
    EVP_PKEY_free(pk);
    free(ct);
    clst_envelope_provider_free(prov);
    clst_enclave_released_key_cleanup(&key);
    return rc;
}

/* Loads the owner's public key from host file "owner" and checks it against the fingerprint the
 * (authenticated) input metadata names. */
static int
owner_key(const struct clst_envelope_header *hdr, EVP_PKEY **out, char fpr_hex[65])
{
    uint8_t *pem = NULL, want[32], got[32];
    size_t pem_size = 0;
    char value[160];
    BIO *bio = NULL;
    EVP_PKEY *pk = NULL;
    int rc = 1;
    if (!meta_get(hdr, "owner-key", value, sizeof(value)) || !parse_sha256(value, want)) {
        eprintf("finance: the input does not name the report's recipient; encrypt it with --meta "
                "owner-key=SHA256 (openssl pkey -pubin -in owner.pub.pem -outform DER | "
                "sha256sum)");
        goto out;
    }
    if (read_all("owner", FIN_PEM_MAX, &pem, &pem_size) != CLST_OK) {
        goto out;
    }
    bio = BIO_new_mem_buf(pem, (int)pem_size);
    pk = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    if (pk == NULL || clst_envelope_fingerprint(pk, got) != CLST_OK) {
        eprintf("finance: 'owner' is not a PEM public key");
        goto out;
    }
    if (CRYPTO_memcmp(want, got, 32) != 0) {
        hex(got, 32, fpr_hex);
        eprintf("finance: 'owner' (SHA256:%s) is not the recipient the data owner named (%s); "
                "refusing to encrypt the report to it",
                fpr_hex, value);
        goto out;
    }
    hex(got, 32, fpr_hex);
    *out = pk;
    pk = NULL;
    rc = 0;
out:
    EVP_PKEY_free(pk);
    BIO_free(bio);
    free(pem);
    return rc;
}

/* ---- parsing the CSV ----------------------------------------------------------------------------
 */

enum col { C_ID, C_TIME, C_CARD, C_MID, C_MNAME, C_CAT, C_CITY, C_COUNTRY, C_AMOUNT, C_CUR, C_N };
static const char *const col_names[C_N] = {
    "txn_id",   "timestamp", "card_number", "merchant_id", "merchant_name",
    "category", "city",      "country",     "amount",      "currency"};

struct row {
    const char *f[C_N]; /* into the plaintext buffer, NUL-terminated */
    int64_t t;          /* Unix seconds */
    int64_t cents;
};

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t
days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool
digits(const char *s, size_t n, int64_t *out)
{
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* "YYYY-MM-DDTHH:MM:SSZ" */
static bool
parse_time(const char *s, int64_t *out)
{
    int64_t y, mo, d, h, mi, se;
    if (strlen(s) != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':' || s[19] != 'Z' || !digits(s, 4, &y) || !digits(s + 5, 2, &mo) ||
        !digits(s + 8, 2, &d) || !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) ||
        !digits(s + 17, 2, &se) || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 ||
        se > 60) {
        return false;
    }
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se;
    return true;
}

/* "123", "123.4", "123.45" -> cents (at most 10^12 units). */
static bool
parse_amount(const char *s, int64_t *out)
{
    const char *dot = strchr(s, '.');
    size_t ilen = dot != NULL ? (size_t)(dot - s) : strlen(s);
    size_t flen = dot != NULL ? strlen(dot + 1) : 0;
    int64_t units, frac = 0;
    if (ilen < 1 || ilen > 12 || (dot != NULL && (flen < 1 || flen > 2)) ||
        !digits(s, ilen, &units) || (flen > 0 && !digits(dot + 1, flen, &frac))) {
        return false;
    }
    *out = units * 100 + (flen == 1 ? frac * 10 : frac);
    return true;
}

static bool
luhn_ok(const char *pan)
{
    size_t n = strlen(pan);
    int sum = 0;
    if (n < 12 || n > 19) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = pan[n - 1 - i];
        if (c < '0' || c > '9') {
            return false;
        }
        int d = c - '0';
        if (i % 2 == 1) {
            d = d * 2 > 9 ? d * 2 - 9 : d * 2;
        }
        sum += d;
    }
    return sum % 10 == 0;
}

/* Splits the CSV in place (commas and newlines become NULs). Fields may not contain quotes. */
static int
parse_csv(char *text, size_t size, struct row **out, size_t *out_count)
{
    int idx[C_N];
    struct row *rows = NULL;
    size_t count = 0, cap = 0, line_no = 0;
    char *p = text, *end = text + size;
    int rc = 1;
    for (size_t i = 0; i < C_N; i++) {
        idx[i] = -1;
    }
    while (p < end) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *line_end = nl != NULL ? nl : end;
        line_no++;
        if (line_end > p && line_end[-1] == '\r') {
            line_end[-1] = '\0';
        }
        *line_end = '\0'; /* text has one spare byte past `size` */
        char *fields[32];
        size_t nf = 0;
        for (char *f = p;;) {
            if (nf == 32) {
                eprintf("finance: line %zu has more than 32 fields", line_no);
                goto out;
            }
            fields[nf++] = f;
            char *comma = strchr(f, ',');
            if (comma == NULL) {
                break;
            }
            *comma = '\0';
            f = comma + 1;
        }
        p = line_end + 1;
        if (nf == 1 && fields[0][0] == '\0') {
            continue; /* an empty line */
        }
        if (line_no == 1) {
            for (size_t c = 0; c < C_N; c++) {
                for (size_t j = 0; j < nf; j++) {
                    if (strcmp(fields[j], col_names[c]) == 0) {
                        idx[c] = (int)j;
                    }
                }
                if (idx[c] < 0) {
                    eprintf("finance: the CSV header has no column '%s'", col_names[c]);
                    goto out;
                }
            }
            continue;
        }
        if (count == FIN_ROWS_MAX) {
            eprintf("finance: more than %u transactions", FIN_ROWS_MAX);
            goto out;
        }
        if (count == cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            struct row *r = realloc(rows, ncap * sizeof(*r));
            if (r == NULL) {
                goto out;
            }
            rows = r;
            cap = ncap;
        }
        struct row *r = &rows[count];
        for (size_t c = 0; c < C_N; c++) {
            if ((size_t)idx[c] >= nf) {
                eprintf("finance: line %zu has %zu fields, fewer than the header", line_no, nf);
                goto out;
            }
            r->f[c] = fields[idx[c]];
            if (strlen(r->f[c]) > FIN_FIELD_MAX || strchr(r->f[c], '"') != NULL) {
                eprintf("finance: line %zu: field '%s' is longer than %d bytes or quoted", line_no,
                        col_names[c], FIN_FIELD_MAX);
                goto out;
            }
        }
        /* The messages name the line and the column, never the card number. */
        if (!parse_time(r->f[C_TIME], &r->t)) {
            eprintf("finance: line %zu: timestamp is not YYYY-MM-DDTHH:MM:SSZ", line_no);
            goto out;
        }
        if (!parse_amount(r->f[C_AMOUNT], &r->cents)) {
            eprintf("finance: line %zu: amount is not a decimal with at most 2 places", line_no);
            goto out;
        }
        if (!luhn_ok(r->f[C_CARD])) {
            eprintf("finance: line %zu: card_number is not a 12-19 digit Luhn-valid number",
                    line_no);
            goto out;
        }
        if (count > 0 && strcmp(r->f[C_CUR], rows[0].f[C_CUR]) != 0) {
            eprintf("finance: line %zu: currency differs from the first row's; give one "
                    "billing currency",
                    line_no);
            goto out;
        }
        count++;
    }
    if (count == 0) {
        eprintf("finance: the input has no transactions");
        goto out;
    }
    *out = rows;
    *out_count = count;
    rows = NULL;
    rc = 0;
out:
    free(rows);
    return rc;
}

/* ---- geography without libm ---------------------------------------------------------------------
 */

#define FIN_PI 3.14159265358979323846

/* sin and cos by range reduction and Taylor series (|error| < 1e-12): the enclave does not load
 * libm. */
static double
fin_sin(double x)
{
    while (x > FIN_PI) {
        x -= 2 * FIN_PI;
    }
    while (x < -FIN_PI) {
        x += 2 * FIN_PI;
    }
    double term = x, sum = x;
    for (int k = 1; k < 12; k++) {
        term *= -x * x / ((2 * k) * (2 * k + 1));
        sum += term;
    }
    return sum;
}

static double
fin_cos(double x)
{
    return fin_sin(x + FIN_PI / 2);
}

static const struct fin_city *
city_find(const char *name, const char *country)
{
    for (size_t i = 0; i < FIN_CITY_COUNT; i++) {
        if (strcmp(fin_cities[i].name, name) == 0 && strcmp(fin_cities[i].country, country) == 0) {
            return &fin_cities[i];
        }
    }
    return NULL;
}

/* Great-circle distance in km, or -1 when a city is not in the gazetteer. The chord between the
 * two points on the unit sphere gives the arc: d = 2R asin(c/2), asin by Newton's method. */
static double
distance_km(const struct row *a, const struct row *b)
{
    const struct fin_city *x = city_find(a->f[C_CITY], a->f[C_COUNTRY]);
    const struct fin_city *y = city_find(b->f[C_CITY], b->f[C_COUNTRY]);
    if (x == NULL || y == NULL) {
        return -1;
    }
    double r = FIN_PI / 180;
    double p[2][3];
    const struct fin_city *c[2] = {x, y};
    for (int i = 0; i < 2; i++) {
        double la = c[i]->lat * r, lo = c[i]->lon * r;
        p[i][0] = fin_cos(la) * fin_cos(lo);
        p[i][1] = fin_cos(la) * fin_sin(lo);
        p[i][2] = fin_sin(la);
    }
    double d2 = 0;
    for (int k = 0; k < 3; k++) {
        d2 += (p[0][k] - p[1][k]) * (p[0][k] - p[1][k]);
    }
    double h = 0.5, s = d2 / 4; /* half chord: sqrt(d2)/2, by Newton on h*h = s */
    for (int i = 0; i < 60 && s > 0; i++) {
        h = 0.5 * (h + s / h);
    }
    if (s <= 0) {
        return 0;
    }
    double t = h; /* asin(h): solve sin(t) = h */
    for (int i = 0; i < 30; i++) {
        double cs = fin_cos(t);
        if (cs < 1e-9) {
            break;
        }
        t -= (fin_sin(t) - h) / cs;
    }
    return 2 * FIN_EARTH_KM * t;
}

/* ---- the report ---------------------------------------------------------------------------------
 */

struct out {
    char *p;
    size_t len, cap;
    bool failed;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
put(struct out *o, const char *fmt, ...)
{
    for (;;) {
        if (o->failed) {
            return;
        }
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->failed = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t ncap = o->cap * 2 + (size_t)n;
        char *q = ncap <= FIN_REPORT_MAX ? malloc(ncap) : NULL;
        if (q == NULL) {
            o->failed = true;
            return;
        }
        /* A fresh buffer (not realloc) so that the old one, which holds plaintext, is wiped. */
        memcpy(q, o->p, o->len);
        OPENSSL_cleanse(o->p, o->cap);
        free(o->p);
        o->p = q;
        o->cap = ncap;
    }
}

/* A JSON string (the CSV's text is untrusted: every character that JSON needs escaped is). */
static void
put_str(struct out *o, const char *s)
{
    put(o, "\"");
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            put(o, "\\%c", c);
        } else if (c < 0x20 || c == 0x7f) {
            put(o, "\\u%04x", c);
        } else {
            put(o, "%c", c);
        }
    }
    put(o, "\"");
}

static void
put_cents(struct out *o, int64_t cents)
{
    put(o, "%s%lld.%02lld", cents < 0 ? "-" : "", (long long)(cents < 0 ? -cents : cents) / 100,
        (long long)(cents < 0 ? -cents : cents) % 100);
}

static void
put_time(struct out *o, const struct row *r)
{
    put_str(o, r->f[C_TIME]);
}

/* ---- the analysis -------------------------------------------------------------------------------
 */

/* Orderings of row indices. */
static int
by_card_time(const struct row *rows, size_t a, size_t b)
{
    const struct row *x = &rows[a], *y = &rows[b];
    int c = strcmp(x->f[C_CARD], y->f[C_CARD]);
    if (c != 0) {
        return c;
    }
    return x->t < y->t ? -1 : x->t > y->t;
}

static int
by_merchant(const struct row *rows, size_t a, size_t b)
{
    return strcmp(rows[a].f[C_MID], rows[b].f[C_MID]);
}

/*
 * A stable bottom-up merge sort of row indices. Not qsort: glibc's qsort asks the kernel for the
 * machine's memory size (sysinfo) the first time it sorts more than a few hundred bytes, and the
 * enclave's sandbox allows no such call.
 */
static int
sort_rows(const struct row *rows, size_t *ix, size_t n,
          int (*cmp)(const struct row *, size_t, size_t))
{
    size_t *tmp = malloc(n * sizeof(*tmp));
    if (tmp == NULL) {
        return -1;
    }
    size_t *a = ix, *b = tmp;
    for (size_t width = 1; width < n; width *= 2) {
        for (size_t lo = 0; lo < n; lo += 2 * width) {
            size_t mid = lo + width < n ? lo + width : n;
            size_t hi = lo + 2 * width < n ? lo + 2 * width : n;
            size_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi) {
                b[k++] = cmp(rows, a[j], a[i]) < 0 ? a[j++] : a[i++];
            }
            while (i < mid) {
                b[k++] = a[i++];
            }
            while (j < hi) {
                b[k++] = a[j++];
            }
        }
        size_t *t = a;
        a = b;
        b = t;
    }
    if (a != ix) {
        memcpy(ix, a, n * sizeof(*ix));
    }
    free(tmp);
    return 0;
}

/* "tok_" + 16 hex of HMAC-SHA-256(key, card number). */
static int
tokenize(const struct clst_secret *key, const char *pan, char out[21])
{
    uint8_t mac[32];
    size_t mac_size = 0;
    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key->ptr, key->size,
                  (const unsigned char *)pan, strlen(pan), mac, sizeof(mac), &mac_size) == NULL ||
        mac_size != 32) {
        return -1;
    }
    memcpy(out, "tok_", 4);
    hex(mac, 8, out + 4);
    OPENSSL_cleanse(mac, sizeof(mac));
    return 0;
}

static void
mask(const char *pan, char out[20])
{
    size_t n = strlen(pan);
    memcpy(out, pan, 6);
    memset(out + 6, '*', n - 10);
    memcpy(out + n - 4, pan + n - 4, 4);
    out[n] = '\0';
}

struct stats {
    size_t cards, merchants, velocity, geography;
    int64_t total;
};

static int
analyze(const struct row *rows, size_t count, const struct clst_secret *token_key,
        const struct clst_enclave_identity *id, struct out *o, struct stats *st)
{
    size_t *ix = malloc(count * sizeof(*ix));
    struct out alerts = {0};
    int rc = 1;
    if (ix == NULL) {
        goto out;
    }
    alerts.cap = 4096;
    alerts.p = malloc(alerts.cap);
    if (alerts.p == NULL) {
        goto out;
    }
    alerts.p[0] = '\0';
    for (size_t i = 0; i < count; i++) {
        ix[i] = i;
        st->total += rows[i].cents;
    }

    char mrenclave[97];
    hex(id->mrenclave, CLST_ENCLAVE_MEASUREMENT_SIZE, mrenclave);
    put(o, "{\n\"report\": \"card-transaction analytics\",\n");
    put(o,
        "\"computed_in\": {\"tee\": \"sim (development only)\", \"mrenclave\": \"%s\", "
        "\"product_id\": %u, \"svn\": %u},\n",
        mrenclave, id->product_id, id->svn);
    put(o,
        "\"rules\": {\"velocity\": \"%d or more transactions on one card within %d minutes\", "
        "\"geography\": \"two transactions on one card within %d minutes in different "
        "countries more than %.0f km apart\"},\n",
        FIN_VELOCITY_N, FIN_VELOCITY_SEC / 60, FIN_GEO_SEC / 60, FIN_GEO_KM);
    put(o, "\"currency\": ");
    put_str(o, rows[0].f[C_CUR]);
    put(o, ",\n\"cards\": [\n");

    /* Per card, in time order: totals and both rules. */
    if (sort_rows(rows, ix, count, by_card_time) != 0) {
        goto out;
    }
    bool first_alert = true;
    for (size_t i = 0; i < count;) {
        size_t j = i;
        int64_t total = 0;
        while (j < count && strcmp(rows[ix[j]].f[C_CARD], rows[ix[i]].f[C_CARD]) == 0) {
            total += rows[ix[j]].cents;
            j++;
        }
        const char *pan = rows[ix[i]].f[C_CARD];
        char tok[21], masked[20];
        if (tokenize(token_key, pan, tok) != 0) {
            eprintf("finance: HMAC failed");
            goto out;
        }
        mask(pan, masked);
        put(o, "%s{\"token\": \"%s\", \"card\": \"%s\", \"transactions\": %zu, \"total\": ",
            st->cards ? ",\n" : "", tok, masked, j - i);
        put_cents(o, total);
        put(o, ", \"first\": ");
        put_time(o, &rows[ix[i]]);
        put(o, ", \"last\": ");
        put_time(o, &rows[ix[j - 1]]);
        put(o, "}");
        st->cards++;

        /* velocity: the largest number of transactions in any window of FIN_VELOCITY_SEC */
        size_t best = 0, best_lo = i, lo = i;
        for (size_t k = i; k < j; k++) {
            while (rows[ix[k]].t - rows[ix[lo]].t > FIN_VELOCITY_SEC) {
                lo++;
            }
            if (k - lo + 1 > best) {
                best = k - lo + 1;
                best_lo = lo;
            }
        }
        if (best >= FIN_VELOCITY_N) {
            const struct row *a = &rows[ix[best_lo]], *b = &rows[ix[best_lo + best - 1]];
            put(&alerts,
                "%s{\"rule\": \"velocity\", \"token\": \"%s\", \"card\": \"%s\", "
                "\"detail\": \"%zu transactions in %lld s\", \"from\": ",
                first_alert ? "" : ",\n", tok, masked, best, (long long)(b->t - a->t));
            put_time(&alerts, a);
            put(&alerts, ", \"to\": ");
            put_time(&alerts, b);
            put(&alerts, "}");
            first_alert = false;
            st->velocity++;
        }
        /* geography: the first pair within FIN_GEO_SEC that is too far apart */
        bool geo = false;
        for (size_t k = i; k < j && !geo; k++) {
            for (size_t m = k + 1; m < j && rows[ix[m]].t - rows[ix[k]].t <= FIN_GEO_SEC; m++) {
                const struct row *a = &rows[ix[k]], *b = &rows[ix[m]];
                if (strcmp(a->f[C_COUNTRY], b->f[C_COUNTRY]) == 0) {
                    continue;
                }
                double km = distance_km(a, b);
                if (km >= 0 && km <= FIN_GEO_KM) {
                    continue;
                }
                put(&alerts,
                    "%s{\"rule\": \"geography\", \"token\": \"%s\", \"card\": \"%s\", "
                    "\"detail\": ",
                    first_alert ? "" : ",\n", tok, masked);
                char detail[700];
                snprintf(detail, sizeof(detail), "%s (%s) then %s (%s), %lld min apart, %s%.0f km",
                         a->f[C_CITY], a->f[C_COUNTRY], b->f[C_CITY], b->f[C_COUNTRY],
                         (long long)((b->t - a->t) / 60), km < 0 ? "unknown city, >" : "",
                         km < 0 ? FIN_GEO_KM : km);
                put_str(&alerts, detail);
                put(&alerts, ", \"from\": ");
                put_time(&alerts, a);
                put(&alerts, ", \"to\": ");
                put_time(&alerts, b);
                put(&alerts, "}");
                first_alert = false;
                st->geography++;
                geo = true;
                break;
            }
        }
        i = j;
    }

    /* Per merchant. */
    put(o, "\n],\n\"merchants\": [\n");
    if (sort_rows(rows, ix, count, by_merchant) != 0) {
        goto out;
    }
    for (size_t i = 0; i < count;) {
        size_t j = i;
        int64_t total = 0;
        const struct row *m = &rows[ix[i]];
        while (j < count && strcmp(rows[ix[j]].f[C_MID], m->f[C_MID]) == 0) {
            total += rows[ix[j]].cents;
            j++;
        }
        put(o, "%s{\"merchant_id\": ", st->merchants ? ",\n" : "");
        put_str(o, m->f[C_MID]);
        put(o, ", \"name\": ");
        put_str(o, m->f[C_MNAME]);
        put(o, ", \"category\": ");
        put_str(o, m->f[C_CAT]);
        put(o, ", \"city\": ");
        put_str(o, m->f[C_CITY]);
        put(o, ", \"country\": ");
        put_str(o, m->f[C_COUNTRY]);
        put(o, ", \"transactions\": %zu, \"total\": ", j - i);
        put_cents(o, total);
        put(o, "}");
        st->merchants++;
        i = j;
    }
    put(o, "\n],\n\"alerts\": [\n%s\n],\n", alerts.p);
    put(o, "\"summary\": {\"transactions\": %zu, \"cards\": %zu, \"merchants\": %zu, \"total\": ",
        count, st->cards, st->merchants);
    put_cents(o, st->total);
    put(o, ", \"alerts\": {\"velocity\": %zu, \"geography\": %zu}}\n}\n", st->velocity,
        st->geography);
    if (o->failed || alerts.failed) {
        eprintf("finance: the report does not fit in memory");
        goto out;
    }
    rc = 0;
out:
    if (alerts.p != NULL) {
        OPENSSL_cleanse(alerts.p, alerts.cap);
        free(alerts.p);
    }
    free(ix);
    return rc;
}

/* Encrypts `data` to the owner's key and writes it to host file `name`. */
static int
write_encrypted(const char *name, EVP_PKEY *owner, const uint8_t *data, size_t size)
{
    struct clst_envelope_provider *prov = NULL;
    struct clst_err err = {0};
    uint8_t *ct = NULL;
    uint64_t cap = 0;
    size_t ct_size = 0;
    uint32_t h;
    int rc = 1;
    if (clst_envelope_provider_recipient_new(owner, &prov, &err) != CLST_OK ||
        clst_envelope_ciphertext_size(CLST_ENVELOPE_HEADER_MAX_SIZE, size, &cap) != CLST_OK ||
        (ct = malloc((size_t)cap)) == NULL ||
        clst_envelope_encrypt_mem(data, size, ct, (size_t)cap, &ct_size, prov, 1, &err) !=
            CLST_OK) {
        eprintf("finance: encrypting the report to the owner failed: %s", err.msg);
        goto out;
    }
    if (clst_enclave_file_open(name, CLST_ENCLAVE_FILE_WRITE, &h, &err) != CLST_OK ||
        clst_enclave_file_write(h, ct, ct_size, &err) != CLST_OK) {
        eprintf("finance: cannot write '%s' (offer it with --out %s=PATH): %s", name, name,
                err.msg);
        goto out;
    }
    rc = 0;
out:
    free(ct);
    clst_envelope_provider_free(prov);
    return rc;
}

static int
cmd_analyze(const char *token_key_name)
{
    uint8_t *pt = NULL;
    size_t pt_size = 0, count = 0;
    struct clst_envelope_header *hdr = calloc(1, sizeof(*hdr));
    struct clst_enclave_released_key tkey = {0};
    struct clst_enclave_identity id;
    struct row *rows = NULL;
    struct out report = {0};
    struct stats st = {0};
    EVP_PKEY *owner = NULL;
    char fpr[65];
    int rc = 1;

    if (hdr == NULL || clst_enclave_identity_get(&id) != CLST_OK) {
        goto out;
    }
    rc = open_input("transactions", &pt, &pt_size, hdr, &owner, fpr);
    if (rc != 0) {
        goto out;
    }
    rc = 1;
    /* parse_csv writes a NUL past the last line: give it one spare byte. */
    uint8_t *text = realloc(pt, pt_size + 1);
    if (text == NULL) {
        goto out;
    }
    pt = text;
    if (parse_csv((char *)pt, pt_size, &rows, &count) != 0) {
        goto out;
    }
    rc = release(token_key_name, &tkey);
    if (rc != 0) {
        goto out;
    }
    rc = 1;
    if (strncmp(tkey.kty, "oct", 3) != 0 || tkey.material->size < 16) {
        eprintf("finance: the tokenization key '%s' must be an oct (AES) key of 128 bits or more "
                "(it is %s)",
                token_key_name, tkey.kty);
        goto out;
    }
    report.cap = 1u << 20;
    report.p = malloc(report.cap);
    if (report.p == NULL) {
        goto out;
    }
    if (analyze(rows, count, tkey.material, &id, &report, &st) != 0) {
        goto out;
    }
    if (write_encrypted("report", owner, (const uint8_t *)report.p, report.len) != 0) {
        goto out;
    }
    /* What the host may see: counts only. */
    clst_enclave_printf("finance: analysed %zu transactions on %zu cards at %zu merchants inside "
                        "the enclave\n"
                        "finance: alerts: %zu velocity, %zu geography; card numbers replaced by "
                        "HMAC tokens (key '%s')\n"
                        "finance: report encrypted to the owner's key SHA256:%.16s...\n",
                        count, st.cards, st.merchants, st.velocity, st.geography, token_key_name,
                        fpr);
    rc = 0;
out:
    if (pt != NULL) {
        OPENSSL_cleanse(pt, pt_size + 1);
        free(pt);
    }
    if (report.p != NULL) {
        OPENSSL_cleanse(report.p, report.cap);
        free(report.p);
    }
    free(rows);
    free(hdr);
    EVP_PKEY_free(owner);
    clst_enclave_released_key_cleanup(&tkey);
    return rc;
}

static int
finance_main(int argc, char **argv)
{
    const char *token_key = FIN_DEFAULT_TOKEN_KEY;
    if (argc >= 2 && strcmp(argv[1], "analyze") == 0) {
        if (argc == 4 && strcmp(argv[2], "--token-key") == 0) {
            token_key = argv[3];
        } else if (argc != 2) {
            goto usage;
        }
        return cmd_analyze(token_key);
    }
usage:
    eprintf("usage: %s analyze [--token-key NAME]\n"
            "  inputs:  transactions (a .clst of the CSV under a vault key, with metadata "
            "owner-key and vault-ca), owner (the report recipient's PEM public key)\n"
            "  outputs: report (the JSON report, encrypted to owner)",
            argv[0]);
    return 2;
}

CLST_ENCLAVE_DEFINE_MAIN(finance_main);
