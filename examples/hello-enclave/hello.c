/*
 * hello-enclave: a small enclave that shows the SDK (include/cloister/enclave.h) and that the
 * tests and the benchmark use.
 *
 * Entry points (call them with clst_host_enclave_call):
 *   hello         in: a name; out: a greeting naming this enclave's measurement
 *   null          nothing in, nothing out (call overhead)
 *   sink          any input; out: its size as 8 little-endian bytes (argument throughput)
 *   echo          out: the input
 *   identity      out: mrenclave (48) || mrsigner (32) || product id, svn (2 + 2, LE) || debug (1)
 *   seal          in: policy byte (1 measurement, 2 signer) || data; out: the sealed blob
 *   unseal        in: a sealed blob; out: the data
 *   evidence      in: 64 bytes of report data; out: evidence for them
 *   kr_begin      generates an RSA key pair inside; out: u32 size || runtime data || evidence
 *                 binding SHA-256(runtime data)
 *   kr_unwrap     in: enc name || NUL || a key wrapped to that key pair; out: SHA-256 of the
 *                 unwrapped key (the key itself never leaves)
 *
 * main (cloister run hello-enclave.so -- COMMAND):
 *   greet [NAME]  print a greeting and this enclave's identity
 *   wc            count bytes and lines of file "input"; report to "output" (or stdout)
 *   seal          seal file "input" to this enclave's signer; write the blob to "output"
 *   unseal        unseal file "input"; write the data to "output"
 *   release NAME [--version V] [--pin SHA256HEX]
 *                 secure key release of vault key NAME from inside the enclave (the host only
 *                 relays: cloister run --attest-url/--vault-url/--ca/--token-file); prints the
 *                 key's kid, type and the SHA-256 of the released material (never the key). With
 *                 file "input" (a .clst file encrypted to vault:NAME), decrypts it inside with the
 *                 released key and prints the plaintext's size and SHA-256 (the plaintext goes to
 *                 file "output" only when the host offers one). --pin: SHA-256 of the vault CA's
 *                 DER (clst_enclave_key_release_pin); without it the CA comes from the host.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cloister/enclave.h>
#include <cloister/envelope.h>

#define HELLO_FILE_MAX (64u * 1024 * 1024)

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

static enum clst_status
hello(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_cap, size_t *out_size)
{
    struct clst_enclave_identity id;
    char name[65], m[17];
    size_t n = in_size < 64 ? in_size : 64;
    for (size_t i = 0; i < n; i++) {
        name[i] = (in[i] >= 0x20 && in[i] < 0x7f) ? (char)in[i] : '?';
    }
    name[n] = '\0';
    if (clst_enclave_identity_get(&id) != CLST_OK) {
        return CLST_E_INTERNAL;
    }
    hex(id.mrenclave, 8, m);
    int w = snprintf((char *)out, out_cap, "hello, %s, from enclave %s", n ? name : "world", m);
    if (w < 0 || (size_t)w >= out_cap) {
        clst_enclave_set_error("the greeting needs %d bytes of output", w + 1);
        return CLST_E_LIMIT;
    }
    *out_size = (size_t)w;
    return CLST_OK;
}

static enum clst_status
null_call(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_cap, size_t *out_size)
{
    (void)in, (void)in_size, (void)out, (void)out_cap;
    *out_size = 0;
    return CLST_OK;
}

static enum clst_status
sink(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_cap, size_t *out_size)
{
    (void)in;
    if (out_cap < 8) {
        return CLST_E_LIMIT;
    }
    uint64_t v = in_size;
    for (int i = 0; i < 8; i++) {
        out[i] = (uint8_t)(v >> (8 * i));
    }
    *out_size = 8;
    return CLST_OK;
}

static enum clst_status
echo(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_cap, size_t *out_size)
{
    if (in_size > out_cap) {
        clst_enclave_set_error("echo: %zu bytes do not fit in %zu", in_size, out_cap);
        return CLST_E_LIMIT;
    }
    if (in_size > 0) {
        memcpy(out, in, in_size);
    }
    *out_size = in_size;
    return CLST_OK;
}

static enum clst_status
identity(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_cap, size_t *out_size)
{
    struct clst_enclave_identity id;
    (void)in, (void)in_size;
    if (out_cap < 85 || clst_enclave_identity_get(&id) != CLST_OK) {
        return CLST_E_LIMIT;
    }
    memcpy(out, id.mrenclave, 48);
    memcpy(out + 48, id.mrsigner, 32);
    out[80] = (uint8_t)id.product_id;
    out[81] = (uint8_t)(id.product_id >> 8);
    out[82] = (uint8_t)id.svn;
    out[83] = (uint8_t)(id.svn >> 8);
    out[84] = id.debug ? 1 : 0;
    *out_size = 85;
    return CLST_OK;
}

static enum clst_status
seal(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_cap, size_t *out_size)
{
    struct clst_err err = {0};
    if (in_size < 1) {
        clst_enclave_set_error("seal: the first byte is the policy (1 or 2)");
        return CLST_E_INVAL;
    }
    enum clst_status st = clst_enclave_seal((enum clst_enclave_seal_policy)in[0], NULL, 0, in + 1,
                                            in_size - 1, out, out_cap, out_size, &err);
    if (st != CLST_OK) {
        clst_enclave_set_error("%s", err.msg);
    }
    return st;
}

static enum clst_status
unseal(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_cap, size_t *out_size)
{
    struct clst_err err = {0};
    enum clst_status st = clst_enclave_unseal(NULL, 0, in, in_size, out, out_cap, out_size, &err);
    if (st != CLST_OK) {
        clst_enclave_set_error("%s", err.msg);
    }
    return st;
}

static enum clst_status
evidence(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_cap, size_t *out_size)
{
    struct clst_err err = {0};
    if (in_size != CLST_ENCLAVE_REPORT_DATA_SIZE) {
        clst_enclave_set_error("evidence: give exactly 64 bytes of report data");
        return CLST_E_INVAL;
    }
    enum clst_status st = clst_enclave_evidence_get(in, out, out_cap, out_size, &err);
    if (st != CLST_OK) {
        clst_enclave_set_error("%s", err.msg);
    }
    return st;
}

/* The key pair made by kr_begin, kept for kr_unwrap (enclave memory, never sent out). */
static struct clst_enclave_keypair *kr_key;

static enum clst_status
kr_begin(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_cap, size_t *out_size)
{
    struct clst_err err = {0};
    size_t rd_size = 0, ev_size = 0;
    (void)in, (void)in_size;
    clst_enclave_keypair_free(kr_key);
    kr_key = NULL;
    enum clst_status st = clst_enclave_keypair_new(2048, "hello-enclave", &kr_key, &err);
    if (st == CLST_OK && out_cap < 4) {
        st = CLST_E_LIMIT;
    }
    if (st == CLST_OK) {
        st = clst_enclave_keypair_runtime_data(kr_key, NULL, out + 4, out_cap - 4, &rd_size, &err);
    }
    if (st == CLST_OK) {
        st = clst_enclave_evidence_bind(out + 4, rd_size, out + 4 + rd_size, out_cap - 4 - rd_size,
                                        &ev_size, &err);
    }
    if (st != CLST_OK) {
        clst_enclave_set_error("%s", err.msg);
        return st;
    }
    for (int i = 0; i < 4; i++) {
        out[i] = (uint8_t)(rd_size >> (8 * i));
    }
    *out_size = 4 + rd_size + ev_size;
    return CLST_OK;
}

static enum clst_status
kr_unwrap(const uint8_t *in, size_t in_size, uint8_t *out, size_t out_cap, size_t *out_size)
{
    struct clst_err err = {0};
    enum clst_enclave_wrap_alg alg;
    uint8_t key[512];
    size_t key_size = 0;
    unsigned int md_size = 0;
    const uint8_t *nul = memchr(in, 0, in_size);
    if (kr_key == NULL || nul == NULL || out_cap < 32) {
        clst_enclave_set_error("kr_unwrap: call kr_begin first; input is ENC NUL WRAPPED");
        return CLST_E_INVAL;
    }
    if (clst_enclave_wrap_alg_parse((const char *)in, &alg) != CLST_OK) {
        clst_enclave_set_error("kr_unwrap: unknown enc '%s'", (const char *)in);
        return CLST_E_INVAL;
    }
    size_t off = (size_t)(nul - in) + 1;
    enum clst_status st = clst_enclave_keypair_unwrap(kr_key, alg, in + off, in_size - off, key,
                                                      sizeof(key), &key_size, &err);
    if (st != CLST_OK) {
        clst_enclave_set_error("%s", err.msg);
        return st;
    }
    /* Prove possession without revealing it. */
    int ok = EVP_Digest(key, key_size, out, &md_size, EVP_sha256(), NULL);
    OPENSSL_cleanse(key, sizeof(key));
    if (ok != 1) {
        return CLST_E_CRYPTO;
    }
    *out_size = md_size;
    return CLST_OK;
}

static const struct clst_enclave_entry entries[] = {
    {"hello", hello},       {"null", null_call},      {"sink", sink},     {"echo", echo},
    {"identity", identity}, {"seal", seal},           {"unseal", unseal}, {"evidence", evidence},
    {"kr_begin", kr_begin}, {"kr_unwrap", kr_unwrap},
};

/* ---- main, for `cloister run` ------------------------------------------------------------------
 */

/* Reads all of host file `name` into a new buffer. */
static enum clst_status
read_all(const char *name, uint8_t **out, size_t *out_size)
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
            if (cap >= HELLO_FILE_MAX) {
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
    clst_enclave_log(CLST_LOG_ERROR, "reading '%s': %s", name, err.msg);
    free(buf);
    return st;
}

/* Writes to host file "output" when the host offers one, else to stdout. */
static enum clst_status
write_result(const uint8_t *data, size_t size)
{
    uint32_t h;
    enum clst_status st = clst_enclave_file_open("output", CLST_ENCLAVE_FILE_WRITE, &h, NULL);
    if (st == CLST_E_NOTFOUND) {
        st = clst_enclave_file_open("stdout", CLST_ENCLAVE_FILE_WRITE, &h, NULL);
    }
    if (st == CLST_OK) {
        st = clst_enclave_file_write(h, data, size, NULL);
    }
    return st;
}

static int
main_greet(const char *name)
{
    struct clst_enclave_identity id;
    char m[97], s[65];
    if (clst_enclave_identity_get(&id) != CLST_OK) {
        return 1;
    }
    hex(id.mrenclave, 48, m);
    hex(id.mrsigner, 32, s);
    clst_enclave_printf("hello, %s, from inside the enclave\n"
                        "mrenclave %s\nmrsigner  %s\nproduct %u svn %u%s\n",
                        name, m, s, id.product_id, id.svn, id.debug ? " (debug)" : "");
    return 0;
}

static int
main_wc(void)
{
    uint8_t *data = NULL, md[32];
    size_t size = 0, lines = 0;
    unsigned int md_size = 0;
    char line[200], mdhex[65];
    if (read_all("input", &data, &size) != CLST_OK) {
        return 1;
    }
    for (size_t i = 0; i < size; i++) {
        lines += data[i] == '\n';
    }
    if (EVP_Digest(data, size, md, &md_size, EVP_sha256(), NULL) != 1) {
        free(data);
        return 1;
    }
    free(data);
    hex(md, 32, mdhex);
    int n = snprintf(line, sizeof(line), "bytes=%zu lines=%zu sha256=%s\n", size, lines, mdhex);
    return write_result((const uint8_t *)line, (size_t)n) == CLST_OK ? 0 : 1;
}

static int
main_seal(bool sealing)
{
    uint8_t *data = NULL, *out = NULL;
    size_t size = 0, out_size = 0;
    struct clst_err err = {0};
    int rc = 1;
    if (read_all("input", &data, &size) != CLST_OK) {
        return 1;
    }
    out = malloc(size + CLST_SEAL_OVERHEAD);
    if (out == NULL) {
        goto out;
    }
    enum clst_status st =
        sealing ? clst_enclave_seal(CLST_SEAL_TO_SIGNER, NULL, 0, data, size, out,
                                    size + CLST_SEAL_OVERHEAD, &out_size, &err)
                : clst_enclave_unseal(NULL, 0, data, size, out, size, &out_size, &err);
    if (st != CLST_OK) {
        uint32_t h;
        if (clst_enclave_file_open("stderr", CLST_ENCLAVE_FILE_WRITE, &h, NULL) == CLST_OK) {
            (void)clst_enclave_file_write(h, err.msg, strlen(err.msg), NULL);
            (void)clst_enclave_file_write(h, "\n", 1, NULL);
        }
        rc = st == CLST_E_DENIED ? 3 : 4;
        goto out;
    }
    rc = write_result(out, out_size) == CLST_OK ? 0 : 1;
out:
    free(data);
    free(out);
    return rc;
}

static void to_stderr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
to_stderr(const char *fmt, ...)
{
    char line[512];
    uint32_t h;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n > 0 && clst_enclave_file_open("stderr", CLST_ENCLAVE_FILE_WRITE, &h, NULL) == CLST_OK) {
        (void)clst_enclave_file_write(h, line, strlen(line), NULL);
    }
}

static bool
sha256_hex(const uint8_t *p, size_t n, char out[65])
{
    uint8_t md[32];
    unsigned int md_size = 0;
    if (EVP_Digest(p, n, md, &md_size, EVP_sha256(), NULL) != 1 || md_size != 32) {
        return false;
    }
    hex(md, 32, out);
    return true;
}

/* Decrypts file "input" (a .clst file for the released key) inside the enclave. */
static int
release_decrypt(const struct clst_enclave_released_key *k)
{
    struct clst_envelope_provider *prov = NULL;
    struct clst_err err = {0};
    uint8_t *ct = NULL, *pt = NULL;
    size_t ct_size = 0, pt_size = 0;
    char md[65];
    uint32_t h;
    int rc = 4;

    if (read_all("input", &ct, &ct_size) != CLST_OK) {
        return 4;
    }
    if (clst_enclave_released_key_provider(k, &prov, &err) != CLST_OK) {
        to_stderr("release: %s\n", err.msg);
        goto out;
    }
    pt = malloc(ct_size > 0 ? ct_size : 1);
    if (pt == NULL) {
        goto out;
    }
    /* One thread: the sandbox has no threads. */
    if (clst_envelope_decrypt_mem(ct, ct_size, pt, ct_size, &pt_size, &prov, 1, 1, &err) !=
        CLST_OK) {
        to_stderr("release: decrypting file 'input': %s\n", err.msg);
        goto out;
    }
    if (!sha256_hex(pt, pt_size, md)) {
        goto out;
    }
    clst_enclave_printf("decrypted %zu bytes sha256=%s\n", pt_size, md);
    if (clst_enclave_file_open("output", CLST_ENCLAVE_FILE_WRITE, &h, NULL) == CLST_OK &&
        clst_enclave_file_write(h, pt, pt_size, NULL) != CLST_OK) {
        goto out;
    }
    rc = 0;
out:
    if (pt != NULL) {
        OPENSSL_cleanse(pt, ct_size);
        free(pt);
    }
    free(ct);
    clst_envelope_provider_free(prov);
    return rc;
}

static int
main_release(int argc, char **argv)
{
    struct clst_enclave_released_key k;
    struct clst_err err = {0};
    const char *name = NULL, *version = NULL, *pin = NULL;
    uint32_t h;
    char md[65];
    int rc;

    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--version") == 0 && i + 1 < argc) {
            version = argv[++i];
        } else if (strcmp(argv[i], "--pin") == 0 && i + 1 < argc) {
            pin = argv[++i];
        } else if (name == NULL && argv[i][0] != '-') {
            name = argv[i];
        } else {
            name = NULL;
            break;
        }
    }
    if (name == NULL) {
        to_stderr("usage: release NAME [--version V] [--pin SHA256HEX]\n");
        return 2;
    }
    if (pin != NULL) {
        uint8_t p[CLST_ENCLAVE_RELEASE_PIN_SIZE];
        if (strlen(pin) != 64) {
            to_stderr("release: --pin is 64 hex digits (SHA-256 of the vault CA's DER)\n");
            return 2;
        }
        for (size_t i = 0; i < 32; i++) {
            unsigned v = 0;
            for (size_t j = 0; j < 2; j++) {
                char c = pin[2 * i + j];
                unsigned d = (c >= '0' && c <= '9')   ? (unsigned)(c - '0')
                             : (c >= 'a' && c <= 'f') ? (unsigned)(c - 'a' + 10)
                             : (c >= 'A' && c <= 'F') ? (unsigned)(c - 'A' + 10)
                                                      : 16u;
                if (d > 15) {
                    to_stderr("release: --pin is 64 hex digits\n");
                    return 2;
                }
                v = v * 16 + d;
            }
            p[i] = (uint8_t)v;
        }
        (void)clst_enclave_key_release_pin(p);
    }
    enum clst_status st = clst_enclave_key_release(name, version, &k, &err);
    if (st != CLST_OK) {
        to_stderr("release: %s\n", err.msg);
        return st == CLST_E_DENIED ? 3 : 4;
    }
    if (!sha256_hex(k.material->ptr, k.material->size, md)) {
        clst_enclave_released_key_cleanup(&k);
        return 4;
    }
    clst_enclave_printf("released %s kty=%s size=%zu sha256=%s\n", k.kid, k.kty, k.material->size,
                        md);
    rc = 0;
    if (clst_enclave_file_open("input", CLST_ENCLAVE_FILE_READ, &h, NULL) == CLST_OK) {
        rc = release_decrypt(&k);
    }
    clst_enclave_released_key_cleanup(&k);
    return rc;
}

static int
hello_main(int argc, char **argv)
{
    const char *cmd = argc > 1 ? argv[1] : "greet";
    if (strcmp(cmd, "greet") == 0) {
        return main_greet(argc > 2 ? argv[2] : "world");
    }
    if (strcmp(cmd, "wc") == 0) {
        return main_wc();
    }
    if (strcmp(cmd, "seal") == 0 || strcmp(cmd, "unseal") == 0) {
        return main_seal(strcmp(cmd, "seal") == 0);
    }
    if (strcmp(cmd, "release") == 0) {
        return main_release(argc, argv);
    }
    clst_enclave_printf("usage: %s [greet [NAME] | wc | seal | unseal | release NAME]\n", argv[0]);
    return 2;
}

CLST_ENCLAVE_DEFINE(entries, hello_main);
