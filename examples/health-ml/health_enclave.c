/*
 * health-ml-enclave: logistic regression on patient records inside a TEE
 * (examples/health-ml/README.md). The data is the Breast Cancer Wisconsin (Diagnostic) set
 * (data/README.md): 569 patients, 30 features, diagnosis 0 = malignant, 1 = benign.
 *
 *   cloister run health-ml-enclave.so --platform PLAT --attest-url URL --vault-url URL --ca CA \
 *       --token-file TOKEN --in records=wdbc.csv.clst --in owner=owner.pub.pem \
 *       --out model=model.sealed --out report=eval.json.clst -- train
 *   cloister run health-ml-enclave.so ... --in model=model.sealed --in request=req.csv.clst \
 *       --in owner=owner.pub.pem --out predictions=pred.csv.clst -- predict
 *
 * As in the finance example, the owner encrypts under a vault key (`cloister encrypt --key
 * vault:NAME`) with the authenticated metadata owner-key (SHA-256 of the SPKI of the key results
 * go to) and vault-ca (SHA-256 of the DER of the vault's CA certificate), and the enclave
 * releases that key to itself, pinned to that CA, and decrypts inside.
 *
 * train: a fixed, deterministic split (every 5th record is held out for testing), features
 *   standardized with the training set's mean and standard deviation, L2-regularized logistic
 *   regression (malignant is the positive class) by full-batch gradient descent with a fixed
 *   number of iterations. The model is sealed to this enclave's signer (clst_enclave_seal,
 *   CLST_SEAL_TO_SIGNER: a later version from the same signer and product can still read it;
 *   nothing else can) and written to host file "model"; the evaluation (held-out accuracy,
 *   confusion matrix) is encrypted to the owner and written to "report".
 * predict: unseals the model, decrypts the request (CSV rows of 30 features; a header line and
 *   lines starting with '#' are skipped; a 31st column, a known label, is ignored) and writes the
 *   predictions (row, probability of malignancy, label) encrypted to the owner.
 * The entry point "predict" does the same for host programs: in = le32 model size || sealed model
 *   || le32 PEM size || owner PEM || request .clst; out = the predictions .clst.
 *
 * The host sees the sealed model, ciphertext and counts; never a record, a feature or a result.
 * The enclave does not use libm (the loader does not load it): exp and sqrt are computed here.
 *
 * Exit status: 0 done, 1 failure (the reason on stderr), 2 usage, 3 a key release was refused.
 */
#define _POSIX_C_SOURCE 200809L /* strtok_r */
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

#define HML_INPUT_MAX   (16u * 1024 * 1024)
#define HML_PEM_MAX     (16u * 1024)
#define HML_ROWS_MAX    100000u
#define HML_FEATURES    30
#define HML_TEST_EVERY  5 /* record i is held out when i % 5 == 4 */
#define HML_ITERATIONS  2000
#define HML_RATE        0.5
#define HML_L2          0.001
#define HML_MODEL_MAGIC "CLSTLR01"
#define HML_MODEL_SIZE  (8 + 4 + 8 * (3 * HML_FEATURES + 1))
#define HML_SEAL_AAD    "cloister example health-ml model v1"

/* ---- host files and messages --------------------------------------------------------------------
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
    /* Entry points report through clst_enclave_set_error; main through stderr. */
    clst_enclave_set_error("%s", line);
    if (clst_enclave_file_open("stderr", CLST_ENCLAVE_FILE_WRITE, &h, NULL) == CLST_OK) {
        (void)clst_enclave_file_write(h, line, len, NULL);
        (void)clst_enclave_file_write(h, "\n", 1, NULL);
    }
}

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
    eprintf("health-ml: cannot read input '%s' (offer it with --in %s=PATH): %s", name, name,
            err.msg);
    free(buf);
    return st;
}

static int
write_file(const char *name, const uint8_t *data, size_t size)
{
    uint32_t h;
    struct clst_err err = {0};
    if (clst_enclave_file_open(name, CLST_ENCLAVE_FILE_WRITE, &h, &err) != CLST_OK ||
        clst_enclave_file_write(h, data, size, &err) != CLST_OK) {
        eprintf("health-ml: cannot write '%s' (offer it with --out %s=PATH): %s", name, name,
                err.msg);
        return 1;
    }
    return 0;
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

/* ---- envelopes: open the owner's input, encrypt to the owner ------------------------------------
 */

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

static int owner_key(const struct clst_envelope_header *hdr, const uint8_t *pem, size_t pem_size,
                     EVP_PKEY **out);

/*
 * Decrypts an owner's .clst (in memory) inside: checks the results' recipient `pem` against the
 * one the header names (before asking for any key: a mismatch is refused either way), pins the
 * vault CA the header names, releases the vault key the header names, and decrypts, which
 * authenticates the header and so both metadata values. The plaintext gets one spare byte (for a
 * terminating NUL). Returns the plaintext and the recipient key, or an exit status.
 */
static int
open_envelope(const char *what, const uint8_t *ct, size_t ct_size, const uint8_t *pem,
              size_t pem_size, uint8_t **out, size_t *out_size, struct clst_envelope_header *hdr,
              EVP_PKEY **owner)
{
    uint8_t *pt = NULL, ca_pin[32];
    size_t pt_size = 0;
    char value[160];
    struct clst_err err = {0};
    struct clst_enclave_released_key key = {0};
    struct clst_envelope_provider *prov = NULL;
    EVP_PKEY *pk = NULL;
    int rc = 1;

    if (clst_envelope_header_parse(ct, ct_size, hdr, &err) != CLST_OK) {
        eprintf("health-ml: %s is not a .clst file: %s", what, err.msg);
        goto out;
    }
    if (hdr->ref.kind != CLST_ENVELOPE_REF_VAULT) {
        eprintf("health-ml: %s must be encrypted under a vault key (cloister encrypt --key "
                "vault:NAME), so that only an attested enclave can open it",
                what);
        goto out;
    }
    if (owner_key(hdr, pem, pem_size, &pk) != 0) {
        goto out;
    }
    /* Not authenticated yet: a host that changes it gets a key from another vault, which cannot
     * decrypt the owner's body, so the decryption below fails. */
    if (!meta_get(hdr, "vault-ca", value, sizeof(value)) || !parse_sha256(value, ca_pin)) {
        eprintf("health-ml: %s does not name its vault's CA; encrypt it with --meta "
                "vault-ca=SHA256 (openssl x509 -in ca.pem -outform DER | sha256sum)",
                what);
        goto out;
    }
    if (clst_enclave_key_release_pin(ca_pin) != CLST_OK) {
        eprintf("health-ml: cannot pin the vault CA");
        goto out;
    }
    enum clst_status st = clst_enclave_key_release(hdr->ref.key_name, NULL, &key, &err);
    if (st != CLST_OK) {
        eprintf("health-ml: key release of '%s' failed: %s", hdr->ref.key_name, err.msg);
        rc = st == CLST_E_DENIED ? 3 : 1;
        goto out;
    }
    if (clst_enclave_released_key_provider(&key, &prov, &err) != CLST_OK) {
        eprintf("health-ml: released key '%s' cannot decrypt: %s", hdr->ref.key_name, err.msg);
        goto out;
    }
    pt = malloc(ct_size + 1);
    if (pt == NULL) {
        goto out;
    }
    if (clst_envelope_decrypt_mem(ct, ct_size, pt, ct_size, &pt_size, &prov, 1, 1, &err) !=
        CLST_OK) {
        eprintf("health-ml: %s does not decrypt with the released key '%s': %s", what,
                hdr->ref.key_name, err.msg);
        goto out;
    }
    pt[pt_size] = '\0';
    *out = pt;
    *out_size = pt_size;
    *owner = pk;
    pt = NULL;
    pk = NULL;
    rc = 0;
out:
    EVP_PKEY_free(pk);
    if (pt != NULL) {
        OPENSSL_cleanse(pt, ct_size + 1);
        free(pt);
    }
    clst_envelope_provider_free(prov);
    clst_enclave_released_key_cleanup(&key);
    return rc;
}

/* The owner's public key (PEM), checked against the fingerprint the authenticated metadata
 * names. */
static int
owner_key(const struct clst_envelope_header *hdr, const uint8_t *pem, size_t pem_size,
          EVP_PKEY **out)
{
    uint8_t want[32], got[32];
    char value[160], fpr[65];
    BIO *bio = NULL;
    EVP_PKEY *pk = NULL;
    int rc = 1;
    if (!meta_get(hdr, "owner-key", value, sizeof(value)) || !parse_sha256(value, want)) {
        eprintf("health-ml: the input does not name the results' recipient; encrypt it with "
                "--meta owner-key=SHA256 (openssl pkey -pubin -in owner.pub.pem -outform DER | "
                "sha256sum)");
        goto out;
    }
    if (pem_size > HML_PEM_MAX) {
        eprintf("health-ml: 'owner' is larger than %u bytes", HML_PEM_MAX);
        goto out;
    }
    bio = BIO_new_mem_buf(pem, (int)pem_size);
    pk = bio != NULL ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
    if (pk == NULL || clst_envelope_fingerprint(pk, got) != CLST_OK) {
        eprintf("health-ml: 'owner' is not a PEM public key");
        goto out;
    }
    if (CRYPTO_memcmp(want, got, 32) != 0) {
        hex(got, 32, fpr);
        eprintf("health-ml: 'owner' (SHA256:%s) is not the recipient the data owner named (%s); "
                "refusing to encrypt results to it",
                fpr, value);
        goto out;
    }
    *out = pk;
    pk = NULL;
    rc = 0;
out:
    EVP_PKEY_free(pk);
    BIO_free(bio);
    return rc;
}

static int
encrypt_to(EVP_PKEY *owner, const uint8_t *data, size_t size, uint8_t **out, size_t *out_size)
{
    struct clst_envelope_provider *prov = NULL;
    struct clst_err err = {0};
    uint8_t *ct = NULL;
    uint64_t cap = 0;
    int rc = 1;
    if (clst_envelope_provider_recipient_new(owner, &prov, &err) != CLST_OK ||
        clst_envelope_ciphertext_size(CLST_ENVELOPE_HEADER_MAX_SIZE, size, &cap) != CLST_OK ||
        (ct = malloc((size_t)cap)) == NULL ||
        clst_envelope_encrypt_mem(data, size, ct, (size_t)cap, out_size, prov, 1, &err) !=
            CLST_OK) {
        eprintf("health-ml: encrypting to the owner failed: %s", err.msg);
        free(ct);
        goto out;
    }
    *out = ct;
    rc = 0;
out:
    clst_envelope_provider_free(prov);
    return rc;
}

/* ---- numbers without libm -----------------------------------------------------------------------
 */

/* e^x for |x| <= 40 (clamped beyond): x = k ln 2 + r, |r| <= ln2/2, Taylor series of e^r. */
static double
hml_exp(double x)
{
    const double ln2 = 0.69314718055994530942;
    if (x > 40) {
        x = 40;
    } else if (x < -40) {
        x = -40;
    }
    int k = (int)(x / ln2 + (x >= 0 ? 0.5 : -0.5));
    double r = x - k * ln2, term = 1, sum = 1;
    for (int i = 1; i < 20; i++) {
        term *= r / i;
        sum += term;
    }
    for (; k > 0; k--) {
        sum *= 2;
    }
    for (; k < 0; k++) {
        sum /= 2;
    }
    return sum;
}

static double
hml_sqrt(double s)
{
    if (s <= 0) {
        return 0;
    }
    double h = s > 1 ? s : 1;
    for (int i = 0; i < 100; i++) {
        double n = 0.5 * (h + s / h);
        if (n == h) {
            break;
        }
        h = n;
    }
    return h;
}

static double
sigmoid(double z)
{
    return 1 / (1 + hml_exp(-z));
}

/* ---- the data -----------------------------------------------------------------------------------
 */

struct dataset {
    double *x; /* count rows of HML_FEATURES */
    int *y;    /* 1 = malignant (the file's label 0), 0 = benign; -1 = none */
    size_t count;
};

/*
 * Parses CSV rows of HML_FEATURES numbers and an optional label (0 malignant, 1 benign; required
 * when need_label). The first line is skipped when it is not a data row (the file's
 * "569,30,malignant,benign" header, or column names); '#' lines and empty lines are skipped.
 */
static int
parse_rows(char *text, bool need_label, struct dataset *out)
{
    size_t cap = 0, line_no = 0;
    struct dataset d = {0};
    int rc = 1;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        line_no++;
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\r') {
            line[len - 1] = '\0';
        }
        if (line[0] == '\0' || line[0] == '#') {
            continue;
        }
        double v[HML_FEATURES + 1];
        size_t n = 0;
        bool ok = true;
        for (char *p = line; ok;) {
            char *end = NULL;
            if (n == HML_FEATURES + 1) {
                ok = false;
                break;
            }
            v[n] = strtod(p, &end);
            if (end == p || (*end != ',' && *end != '\0') || v[n] != v[n] || v[n] > 1e12 ||
                v[n] < -1e12) {
                ok = false;
                break;
            }
            n++;
            if (*end == '\0') {
                break;
            }
            p = end + 1;
        }
        if (!ok || n < HML_FEATURES) {
            if (d.count == 0 && line_no == 1) {
                continue; /* a header line */
            }
            eprintf("health-ml: line %zu is not %d numbers%s", line_no, HML_FEATURES,
                    need_label ? " and a label" : " (and an optional label)");
            goto out;
        }
        if (need_label &&
            (n != HML_FEATURES + 1 || (v[HML_FEATURES] != 0 && v[HML_FEATURES] != 1))) {
            if (d.count == 0 && line_no == 1) {
                continue;
            }
            eprintf("health-ml: line %zu: want %d features and a label 0 (malignant) or 1 "
                    "(benign)",
                    line_no, HML_FEATURES);
            goto out;
        }
        if (d.count == HML_ROWS_MAX) {
            eprintf("health-ml: more than %u rows", HML_ROWS_MAX);
            goto out;
        }
        if (d.count == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            double *nx = malloc(ncap * HML_FEATURES * sizeof(double));
            int *ny = malloc(ncap * sizeof(int));
            if (nx == NULL || ny == NULL) {
                free(nx);
                free(ny);
                goto out;
            }
            if (d.count > 0) {
                memcpy(nx, d.x, d.count * HML_FEATURES * sizeof(double));
                memcpy(ny, d.y, d.count * sizeof(int));
                OPENSSL_cleanse(d.x, d.count * HML_FEATURES * sizeof(double));
            }
            free(d.x);
            free(d.y);
            d.x = nx;
            d.y = ny;
            cap = ncap;
        }
        memcpy(d.x + d.count * HML_FEATURES, v, sizeof(double) * HML_FEATURES);
        d.y[d.count] = n == HML_FEATURES + 1 ? (v[HML_FEATURES] == 0 ? 1 : 0) : -1;
        d.count++;
        OPENSSL_cleanse(v, sizeof(v));
    }
    if (d.count == 0) {
        eprintf("health-ml: no data rows");
        goto out;
    }
    *out = d;
    d = (struct dataset){0};
    rc = 0;
out:
    if (d.x != NULL) {
        OPENSSL_cleanse(d.x, cap * HML_FEATURES * sizeof(double));
    }
    free(d.x);
    free(d.y);
    return rc;
}

static void
dataset_free(struct dataset *d)
{
    if (d->x != NULL) {
        OPENSSL_cleanse(d->x, d->count * HML_FEATURES * sizeof(double));
    }
    free(d->x);
    free(d->y);
    *d = (struct dataset){0};
}

/* ---- the model ----------------------------------------------------------------------------------
 */

struct model {
    double mean[HML_FEATURES], sd[HML_FEATURES], w[HML_FEATURES], b;
};

static double
predict_one(const struct model *m, const double *x)
{
    double z = m->b;
    for (size_t j = 0; j < HML_FEATURES; j++) {
        z += m->w[j] * (x[j] - m->mean[j]) / m->sd[j];
    }
    return sigmoid(z);
}

static bool
is_test(size_t i)
{
    return i % HML_TEST_EVERY == HML_TEST_EVERY - 1;
}

struct evaluation {
    size_t train, test, tp, fp, tn, fn;
    double train_accuracy;
};

/* Trains on the rows that are not held out and evaluates on the others. */
static int
train(const struct dataset *d, struct model *m, struct evaluation *ev)
{
    size_t n = 0;
    double *z = NULL; /* standardized training rows */
    int *y = NULL, rc = 1;
    memset(m, 0, sizeof(*m));
    memset(ev, 0, sizeof(*ev));
    for (size_t i = 0; i < d->count; i++) {
        n += !is_test(i);
    }
    if (n < 10 || n == d->count) {
        eprintf("health-ml: need at least 10 training and 1 test rows (have %zu records)",
                d->count);
        return 1;
    }
    z = malloc(n * HML_FEATURES * sizeof(double));
    y = malloc(n * sizeof(int));
    if (z == NULL || y == NULL) {
        goto out;
    }
    /* mean and standard deviation of the training rows */
    for (size_t i = 0, k = 0; i < d->count; i++) {
        if (is_test(i)) {
            continue;
        }
        for (size_t j = 0; j < HML_FEATURES; j++) {
            m->mean[j] += d->x[i * HML_FEATURES + j] / (double)n;
        }
        y[k++] = d->y[i];
    }
    for (size_t i = 0; i < d->count; i++) {
        if (is_test(i)) {
            continue;
        }
        for (size_t j = 0; j < HML_FEATURES; j++) {
            double e = d->x[i * HML_FEATURES + j] - m->mean[j];
            m->sd[j] += e * e / (double)n;
        }
    }
    for (size_t j = 0; j < HML_FEATURES; j++) {
        m->sd[j] = hml_sqrt(m->sd[j]);
        if (m->sd[j] < 1e-12) {
            m->sd[j] = 1; /* a constant feature carries no information */
        }
    }
    for (size_t i = 0, k = 0; i < d->count; i++) {
        if (is_test(i)) {
            continue;
        }
        for (size_t j = 0; j < HML_FEATURES; j++) {
            z[k * HML_FEATURES + j] = (d->x[i * HML_FEATURES + j] - m->mean[j]) / m->sd[j];
        }
        k++;
    }
    /* full-batch gradient descent on the mean log loss + L2/2 |w|^2 */
    for (int it = 0; it < HML_ITERATIONS; it++) {
        double gw[HML_FEATURES] = {0}, gb = 0;
        for (size_t k = 0; k < n; k++) {
            double s = m->b;
            for (size_t j = 0; j < HML_FEATURES; j++) {
                s += m->w[j] * z[k * HML_FEATURES + j];
            }
            double r = sigmoid(s) - y[k];
            for (size_t j = 0; j < HML_FEATURES; j++) {
                gw[j] += r * z[k * HML_FEATURES + j];
            }
            gb += r;
        }
        for (size_t j = 0; j < HML_FEATURES; j++) {
            m->w[j] -= HML_RATE * (gw[j] / (double)n + HML_L2 * m->w[j]);
        }
        m->b -= HML_RATE * gb / (double)n;
    }
    /* accuracy on the training rows and the confusion matrix on the held-out rows */
    ev->train = n;
    for (size_t i = 0; i < d->count; i++) {
        double p = predict_one(m, d->x + i * HML_FEATURES);
        int pred = p >= 0.5;
        if (!is_test(i)) {
            ev->train_accuracy += (pred == d->y[i]) / (double)n;
            continue;
        }
        ev->test++;
        if (pred && d->y[i]) {
            ev->tp++;
        } else if (pred) {
            ev->fp++;
        } else if (d->y[i]) {
            ev->fn++;
        } else {
            ev->tn++;
        }
    }
    rc = 0;
out:
    if (z != NULL) {
        OPENSSL_cleanse(z, n * HML_FEATURES * sizeof(double));
    }
    free(z);
    free(y);
    return rc;
}

static void
model_encode(const struct model *m, uint8_t out[HML_MODEL_SIZE])
{
    uint32_t nf = HML_FEATURES;
    memcpy(out, HML_MODEL_MAGIC, 8);
    memcpy(out + 8, &nf, 4);
    memcpy(out + 12, m->mean, sizeof(m->mean));
    memcpy(out + 12 + 8 * HML_FEATURES, m->sd, sizeof(m->sd));
    memcpy(out + 12 + 16 * HML_FEATURES, m->w, sizeof(m->w));
    memcpy(out + 12 + 24 * HML_FEATURES, &m->b, sizeof(m->b));
}

static int
model_decode(const uint8_t *in, size_t size, struct model *m)
{
    uint32_t nf;
    if (size != HML_MODEL_SIZE || memcmp(in, HML_MODEL_MAGIC, 8) != 0) {
        return 1;
    }
    memcpy(&nf, in + 8, 4);
    if (nf != HML_FEATURES) {
        return 1;
    }
    memcpy(m->mean, in + 12, sizeof(m->mean));
    memcpy(m->sd, in + 12 + 8 * HML_FEATURES, sizeof(m->sd));
    memcpy(m->w, in + 12 + 16 * HML_FEATURES, sizeof(m->w));
    memcpy(&m->b, in + 12 + 24 * HML_FEATURES, sizeof(m->b));
    for (size_t j = 0; j < HML_FEATURES; j++) {
        if (!(m->sd[j] > 0)) {
            return 1;
        }
    }
    return 0;
}

/* ---- train --------------------------------------------------------------------------------------
 */

static int
cmd_train(void)
{
    uint8_t *ct = NULL, *pt = NULL, *pem = NULL, *rep_ct = NULL, blob[HML_MODEL_SIZE];
    uint8_t sealed[HML_MODEL_SIZE + CLST_SEAL_OVERHEAD];
    size_t ct_size = 0, pt_size = 0, pem_size = 0, rep_ct_size = 0, sealed_size = 0;
    struct clst_envelope_header *hdr = calloc(1, sizeof(*hdr));
    struct clst_enclave_identity id;
    struct dataset d = {0};
    struct model m;
    struct evaluation ev;
    struct clst_err err = {0};
    EVP_PKEY *owner = NULL;
    char report[2048], mrenclave[97];
    int rc = 1;

    if (hdr == NULL || clst_enclave_identity_get(&id) != CLST_OK ||
        read_all("records", HML_INPUT_MAX, &ct, &ct_size) != CLST_OK ||
        read_all("owner", HML_PEM_MAX, &pem, &pem_size) != CLST_OK) {
        goto out;
    }
    rc = open_envelope("input 'records'", ct, ct_size, pem, pem_size, &pt, &pt_size, hdr, &owner);
    if (rc != 0) {
        goto out;
    }
    rc = 1;
    if (parse_rows((char *)pt, true, &d) != 0 || train(&d, &m, &ev) != 0) {
        goto out;
    }
    model_encode(&m, blob);
    if (clst_enclave_seal(CLST_SEAL_TO_SIGNER, (const uint8_t *)HML_SEAL_AAD, strlen(HML_SEAL_AAD),
                          blob, sizeof(blob), sealed, sizeof(sealed), &sealed_size,
                          &err) != CLST_OK) {
        eprintf("health-ml: sealing the model failed (run with --platform): %s", err.msg);
        goto out;
    }
    hex(id.mrenclave, CLST_ENCLAVE_MEASUREMENT_SIZE, mrenclave);
    size_t correct = ev.tp + ev.tn;
    int n =
        snprintf(report, sizeof(report),
                 "{\n\"report\": \"logistic regression on the Breast Cancer Wisconsin "
                 "(Diagnostic) data\",\n"
                 "\"computed_in\": {\"tee\": \"sim (development only)\", \"mrenclave\": "
                 "\"%s\", \"product_id\": %u, \"svn\": %u},\n"
                 "\"model\": {\"features\": %d, \"positive_class\": \"malignant\", "
                 "\"standardized\": \"training mean and standard deviation\", "
                 "\"optimizer\": \"full-batch gradient descent\", \"iterations\": %d, "
                 "\"learning_rate\": %.2f, \"l2\": %.4f, \"sealed_to\": \"signer\"},\n"
                 "\"split\": {\"rule\": \"record i is held out when i %% %d == %d\", "
                 "\"train\": %zu, \"test\": %zu},\n"
                 "\"train_accuracy\": %.4f,\n"
                 "\"test_accuracy\": %.4f,\n"
                 "\"confusion\": {\"true_malignant\": %zu, \"false_malignant\": %zu, "
                 "\"true_benign\": %zu, \"false_benign\": %zu}\n}\n",
                 mrenclave, id.product_id, id.svn, HML_FEATURES, HML_ITERATIONS, HML_RATE, HML_L2,
                 HML_TEST_EVERY, HML_TEST_EVERY - 1, ev.train, ev.test, ev.train_accuracy,
                 (double)correct / (double)ev.test, ev.tp, ev.fp, ev.tn, ev.fn);
    if (n < 0 || (size_t)n >= sizeof(report) ||
        encrypt_to(owner, (const uint8_t *)report, (size_t)n, &rep_ct, &rep_ct_size) != 0 ||
        write_file("model", sealed, sealed_size) != 0 ||
        write_file("report", rep_ct, rep_ct_size) != 0) {
        goto out;
    }
    clst_enclave_printf("health-ml: trained on %zu records inside the enclave (%zu held out)\n"
                        "health-ml: model sealed to this enclave's signer (%zu bytes); the "
                        "evaluation is encrypted to the owner\n",
                        ev.train, ev.test, sealed_size);
    rc = 0;
out:
    OPENSSL_cleanse(report, sizeof(report));
    OPENSSL_cleanse(blob, sizeof(blob));
    OPENSSL_cleanse(&m, sizeof(m));
    if (pt != NULL) {
        OPENSSL_cleanse(pt, pt_size);
        free(pt);
    }
    dataset_free(&d);
    free(ct);
    free(pem);
    free(rep_ct);
    free(hdr);
    EVP_PKEY_free(owner);
    return rc;
}

/* ---- predict ------------------------------------------------------------------------------------
 */

/* The predictions for a request, encrypted to the owner. Returns an exit status. */
static int
predict(const uint8_t *sealed, size_t sealed_size, const uint8_t *pem, size_t pem_size,
        const uint8_t *req, size_t req_size, uint8_t **out, size_t *out_size, size_t *out_rows)
{
    uint8_t blob[HML_MODEL_SIZE], *pt = NULL;
    size_t blob_size = 0, pt_size = 0;
    struct clst_envelope_header *hdr = calloc(1, sizeof(*hdr));
    struct clst_err err = {0};
    struct dataset d = {0};
    struct model m;
    EVP_PKEY *owner = NULL;
    char *csv = NULL;
    size_t csv_cap = 0, csv_len = 0;
    int rc = 1;

    if (hdr == NULL) {
        goto out;
    }
    if (clst_enclave_unseal((const uint8_t *)HML_SEAL_AAD, strlen(HML_SEAL_AAD), sealed,
                            sealed_size, blob, sizeof(blob), &blob_size, &err) != CLST_OK ||
        model_decode(blob, blob_size, &m) != 0) {
        eprintf("health-ml: the model does not unseal here (train it with this enclave's signer "
                "first): %s",
                err.msg);
        goto out;
    }
    rc = open_envelope("the request", req, req_size, pem, pem_size, &pt, &pt_size, hdr, &owner);
    if (rc != 0) {
        goto out;
    }
    rc = 1;
    if (parse_rows((char *)pt, false, &d) != 0) {
        goto out;
    }
    csv_cap = 64 + d.count * 48;
    csv = malloc(csv_cap);
    if (csv == NULL) {
        goto out;
    }
    csv_len = (size_t)snprintf(csv, csv_cap, "row,p_malignant,prediction\n");
    for (size_t i = 0; i < d.count; i++) {
        double p = predict_one(&m, d.x + i * HML_FEATURES);
        int n = snprintf(csv + csv_len, csv_cap - csv_len, "%zu,%.4f,%s\n", i + 1, p,
                         p >= 0.5 ? "malignant" : "benign");
        if (n < 0 || (size_t)n >= csv_cap - csv_len) {
            goto out;
        }
        csv_len += (size_t)n;
    }
    if (encrypt_to(owner, (const uint8_t *)csv, csv_len, out, out_size) != 0) {
        goto out;
    }
    *out_rows = d.count;
    rc = 0;
out:
    OPENSSL_cleanse(blob, sizeof(blob));
    OPENSSL_cleanse(&m, sizeof(m));
    if (csv != NULL) {
        OPENSSL_cleanse(csv, csv_cap);
        free(csv);
    }
    if (pt != NULL) {
        OPENSSL_cleanse(pt, pt_size);
        free(pt);
    }
    dataset_free(&d);
    free(hdr);
    EVP_PKEY_free(owner);
    return rc;
}

static int
cmd_predict(void)
{
    uint8_t *sealed = NULL, *pem = NULL, *req = NULL, *ct = NULL;
    size_t sealed_size = 0, pem_size = 0, req_size = 0, ct_size = 0, rows = 0;
    int rc = 1;
    if (read_all("model", HML_MODEL_SIZE + CLST_SEAL_OVERHEAD, &sealed, &sealed_size) != CLST_OK ||
        read_all("owner", HML_PEM_MAX, &pem, &pem_size) != CLST_OK ||
        read_all("request", HML_INPUT_MAX, &req, &req_size) != CLST_OK) {
        goto out;
    }
    rc = predict(sealed, sealed_size, pem, pem_size, req, req_size, &ct, &ct_size, &rows);
    if (rc != 0) {
        goto out;
    }
    rc = write_file("predictions", ct, ct_size);
    if (rc == 0) {
        clst_enclave_printf("health-ml: answered %zu prediction rows; the predictions are "
                            "encrypted to the owner\n",
                            rows);
    }
out:
    free(sealed);
    free(pem);
    free(req);
    free(ct);
    return rc;
}

static uint32_t
le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Entry point "predict": le32 n || sealed model (n) || le32 m || owner PEM (m) || request .clst. */
static enum clst_status
predict_entry(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_cap, size_t *out_size)
{
    uint8_t *ct = NULL;
    size_t ct_size = 0, rows = 0, off = 0;
    if (in_size < 4 || le32(in) > in_size - 4) {
        clst_enclave_set_error("predict: input is le32 n || model || le32 m || PEM || request");
        return CLST_E_MALFORMED;
    }
    size_t model_size = le32(in);
    const uint8_t *model = in + 4;
    off = 4 + model_size;
    if (in_size - off < 4 || le32(in + off) > in_size - off - 4) {
        clst_enclave_set_error("predict: input is le32 n || model || le32 m || PEM || request");
        return CLST_E_MALFORMED;
    }
    size_t pem_size = le32(in + off);
    const uint8_t *pem = in + off + 4;
    off += 4 + pem_size;
    int rc =
        predict(model, model_size, pem, pem_size, in + off, in_size - off, &ct, &ct_size, &rows);
    if (rc != 0) {
        return rc == 3 ? CLST_E_DENIED : CLST_E_VERIFY;
    }
    if (ct_size > out_cap) {
        free(ct);
        clst_enclave_set_error("predict: the answer needs %zu bytes of output", ct_size);
        return CLST_E_LIMIT;
    }
    memcpy(out, ct, ct_size);
    *out_size = ct_size;
    free(ct);
    return CLST_OK;
}

static const struct clst_enclave_entry entries[] = {{"predict", predict_entry}};

static int
health_main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "train") == 0) {
        return cmd_train();
    }
    if (argc == 2 && strcmp(argv[1], "predict") == 0) {
        return cmd_predict();
    }
    eprintf("usage: %s train | predict\n"
            "  train:   in records (.clst CSV under a vault key, metadata owner-key and "
            "vault-ca), owner (PEM public key); out model (sealed), report (.clst)\n"
            "  predict: in model, request (.clst CSV of 30 features per row), owner; out "
            "predictions (.clst)",
            argv[0]);
    return 2;
}

CLST_ENCLAVE_DEFINE(entries, health_main);
