/*
 * Signed enclave images: the manifest format, the measurement, signing and verification (pure:
 * bytes in, bytes out; image.c does the file I/O). The layout is in enclave_int.h and
 * docs/enclaves.md.
 *
 * The measurement (MRENCLAVE) is SHA-384 over a domain string, the image bytes and the manifest's
 * identity fields, so changing any byte of the image or any identity field changes it. The signer
 * id (MRSIGNER) is SHA-256 of the signer's public key in canonical DER SubjectPublicKeyInfo.
 */
#include <elf.h>
#include <pthread.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include <cloister/crypto.h>

#include "enclave/enclave_int.h"

enum clst_status
image_split(const uint8_t *file, size_t size, size_t *out_image_size, const uint8_t **out_manifest,
            size_t *out_manifest_size, struct clst_err *err)
{
    if (size < TRAILER_SIZE || memcmp(file + size - 8, TRAILER_MAGIC, 8) != 0) {
        return clst_err_set(err, CLST_E_NOTFOUND,
                            "the image is not signed (no Cloister manifest at its end): sign it "
                            "with 'cloister enclave sign IMAGE --key SIGNER.pem ...'");
    }
    struct clst_cursor c = clst_cursor_make(file + size - TRAILER_SIZE, 8);
    uint32_t msize;
    if (!clst_cursor_le32(&c, &msize) || !clst_cursor_zeros(&c, 4)) {
        return clst_err_set(err, CLST_E_MALFORMED, "signed image: malformed trailer");
    }
    if (msize < MANIFEST_FIXED_SIZE + 2 || msize > MANIFEST_MAX_SIZE ||
        (size_t)msize > size - TRAILER_SIZE) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "signed image: manifest size %u is impossible (file of %zu bytes)",
                            msize, size);
    }
    size_t image_size = size - TRAILER_SIZE - msize;
    if (image_size == 0) {
        return clst_err_set(err, CLST_E_MALFORMED, "signed image: no image before the manifest");
    }
    *out_image_size = image_size;
    *out_manifest = file + image_size;
    *out_manifest_size = msize;
    return CLST_OK;
}

enum clst_status
manifest_parse(const uint8_t *p, size_t size, struct manifest *out, struct clst_err *err)
{
    struct clst_cursor c = clst_cursor_make(p, size);
    uint8_t magic[4];
    uint16_t version, sig_alg, product_id, svn, pk_size, sig_size;
    uint32_t flags, heap, reserved;
    uint64_t image_size;
    const uint8_t *pk, *sig;
    struct manifest m;

    if (size > MANIFEST_MAX_SIZE) {
        return clst_err_set(err, CLST_E_LIMIT, "manifest: %zu bytes (at most %d)", size,
                            MANIFEST_MAX_SIZE);
    }
    if (!clst_cursor_copy(&c, magic, 4) || !clst_cursor_le16(&c, &version) ||
        !clst_cursor_le16(&c, &sig_alg) || !clst_cursor_le32(&c, &flags) ||
        !clst_cursor_le16(&c, &product_id) || !clst_cursor_le16(&c, &svn) ||
        !clst_cursor_le32(&c, &heap) || !clst_cursor_le32(&c, &reserved) ||
        !clst_cursor_le64(&c, &image_size) || !clst_cursor_copy(&c, m.image_hash, 48) ||
        !clst_cursor_copy(&c, m.mrenclave, 48) || !clst_cursor_le16(&c, &pk_size)) {
        return clst_err_set(err, CLST_E_MALFORMED, "manifest: truncated (%zu bytes)", size);
    }
    if (memcmp(magic, MANIFEST_MAGIC, 4) != 0) {
        return clst_err_set(err, CLST_E_MALFORMED, "manifest: bad magic");
    }
    if (version != MANIFEST_VERSION) {
        return clst_err_set(err, CLST_E_MALFORMED, "manifest: unsupported version %u", version);
    }
    if (sig_alg < SIG_ES256 || sig_alg > SIG_PS256) {
        return clst_err_set(err, CLST_E_MALFORMED, "manifest: unknown signature algorithm %u",
                            sig_alg);
    }
    if ((flags & ~MANIFEST_FLAG_DEBUG) != 0 || reserved != 0) {
        return clst_err_set(err, CLST_E_MALFORMED, "manifest: reserved bits set");
    }
    if (heap == 0 || heap > CLST_HOST_HEAP_MAX_MIB) {
        return clst_err_set(err, CLST_E_MALFORMED, "manifest: heap of %u MiB (1..%u)", heap,
                            CLST_HOST_HEAP_MAX_MIB);
    }
    if (image_size == 0 || image_size > CLST_HOST_IMAGE_MAX_SIZE) {
        return clst_err_set(err, CLST_E_MALFORMED, "manifest: image size %llu",
                            (unsigned long long)image_size);
    }
    if (pk_size == 0 || pk_size > MANIFEST_PUBKEY_MAX || !clst_cursor_take(&c, pk_size, &pk)) {
        return clst_err_set(err, CLST_E_MALFORMED, "manifest: bad public key size %u", pk_size);
    }
    m.signed_size = size - c.left;
    if (!clst_cursor_le16(&c, &sig_size) || sig_size == 0 || sig_size > MANIFEST_SIG_MAX ||
        !clst_cursor_take(&c, sig_size, &sig)) {
        return clst_err_set(err, CLST_E_MALFORMED, "manifest: bad signature size");
    }
    if (!clst_cursor_empty(&c)) {
        return clst_err_set(err, CLST_E_MALFORMED, "manifest: %zu trailing bytes", c.left);
    }
    m.version = version;
    m.sig_alg = sig_alg;
    m.flags = flags;
    m.product_id = product_id;
    m.svn = svn;
    m.heap_mib = heap;
    m.image_size = image_size;
    memcpy(m.pubkey, pk, pk_size);
    m.pubkey_size = pk_size;
    memcpy(m.sig, sig, sig_size);
    m.sig_size = sig_size;
    *out = m;
    return CLST_OK;
}

enum clst_status
image_measure(const uint8_t *image, size_t image_size, uint32_t flags, uint16_t product_id,
              uint16_t svn, uint32_t heap_mib, uint8_t out[static 48])
{
    struct clst_hash_ctx h = {0};
    uint8_t b[8];
    enum clst_status st = clst_hash_init(&h, CLST_HASH_SHA384);
    if (st == CLST_OK) {
        st = clst_hash_update(&h, MEASURE_DOMAIN, strlen(MEASURE_DOMAIN));
    }
    clst_put_le64(b, (uint64_t)image_size);
    if (st == CLST_OK) {
        st = clst_hash_update(&h, b, 8);
    }
    if (st == CLST_OK) {
        st = clst_hash_update(&h, image, image_size);
    }
    clst_put_le32(b, flags);
    clst_put_le16(b + 4, product_id);
    clst_put_le16(b + 6, svn);
    if (st == CLST_OK) {
        st = clst_hash_update(&h, b, 8);
    }
    clst_put_le32(b, heap_mib);
    if (st == CLST_OK) {
        st = clst_hash_update(&h, b, 4);
    }
    if (st == CLST_OK) {
        st = clst_hash_final(&h, out);
    }
    clst_hash_cleanup(&h);
    return st;
}

enum clst_status
image_elf_check(const uint8_t *image, size_t size, struct clst_err *err)
{
    struct clst_cursor c = clst_cursor_make(image, size);
    uint8_t ident[EI_NIDENT];
    uint16_t type, machine;
    if (!clst_cursor_copy(&c, ident, EI_NIDENT) || !clst_cursor_le16(&c, &type) ||
        !clst_cursor_le16(&c, &machine)) {
        return clst_err_set(err, CLST_E_MALFORMED, "the image is too small to be an ELF file");
    }
    if (memcmp(ident, ELFMAG, SELFMAG) != 0) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "the image is not an ELF file (build the enclave as a shared object)");
    }
#if defined(__x86_64__)
    const uint16_t want_machine = EM_X86_64;
#elif defined(__aarch64__)
    const uint16_t want_machine = EM_AARCH64;
#else
#error "unsupported architecture for enclave images"
#endif
    if (ident[EI_CLASS] != ELFCLASS64 || ident[EI_DATA] != ELFDATA2LSB ||
        ident[EI_VERSION] != EV_CURRENT || machine != want_machine) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "the image is an ELF file for another machine (class %u, machine %u)",
                            ident[EI_CLASS], machine);
    }
    if (type != ET_DYN) {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "the image is not an ELF shared object (type %u): link it with "
                            "-shared",
                            type);
    }
    return CLST_OK;
}

/* The algorithm a signer key implies, or 0. */
static uint16_t
alg_for_key(const EVP_PKEY *key)
{
    switch (clst_pkey_kind(key)) {
    case CLST_KEY_EC_P256:
        return SIG_ES256;
    case CLST_KEY_EC_P384:
        return SIG_ES384;
    case CLST_KEY_RSA: {
        int bits = clst_pkey_bits(key);
        return (bits >= CLST_RSA_MIN_BITS && bits <= CLST_RSA_MAX_BITS) ? SIG_PS256 : 0;
    }
    default:
        return 0;
    }
}

#define PSS_SALT_SIZE 32

/*
 * Manifests whose signature this process has verified, by SHA-256 of all their bytes (content,
 * signer key and signature). A byte-identical manifest verifies identically, so creating the
 * same enclave again skips decoding the key and checking the signature, about half of a
 * creation's verification; the image itself is still hashed, measured and checked every time.
 * Only successes are kept.
 */
#define SIG_CACHE_SIZE 8
static pthread_mutex_t sig_cache_lock = PTHREAD_MUTEX_INITIALIZER;
static uint8_t sig_cache[SIG_CACHE_SIZE][32];
static unsigned sig_cache_used, sig_cache_next;

/* Held across fork(), so that a forking host's copy never inherits it locked. */
static void
sig_cache_prepare(void)
{
    pthread_mutex_lock(&sig_cache_lock);
}

static void
sig_cache_after(void)
{
    pthread_mutex_unlock(&sig_cache_lock);
}

static pthread_once_t sig_cache_once = PTHREAD_ONCE_INIT;

static void
sig_cache_register(void)
{
    (void)pthread_atfork(sig_cache_prepare, sig_cache_after, sig_cache_after);
}

static bool
sig_cache_has(const uint8_t h[32])
{
    bool found = false;
    (void)pthread_once(&sig_cache_once, sig_cache_register);
    pthread_mutex_lock(&sig_cache_lock);
    for (unsigned i = 0; i < sig_cache_used && !found; i++) {
        found = memcmp(sig_cache[i], h, 32) == 0;
    }
    pthread_mutex_unlock(&sig_cache_lock);
    return found;
}

static void
sig_cache_add(const uint8_t h[32])
{
    pthread_mutex_lock(&sig_cache_lock);
    memcpy(sig_cache[sig_cache_next], h, 32);
    sig_cache_next = (sig_cache_next + 1) % SIG_CACHE_SIZE;
    if (sig_cache_used < SIG_CACHE_SIZE) {
        sig_cache_used++;
    }
    pthread_mutex_unlock(&sig_cache_lock);
}

static enum clst_status
verify_sig(const struct manifest *m, const uint8_t *manifest_bytes, EVP_PKEY **out_key,
           struct clst_err *err)
{
    EVP_PKEY *key = NULL;
    struct clst_buf der = {0};
    enum clst_status rc = CLST_E_VERIFY;

    clst_buf_init(&der, MANIFEST_PUBKEY_MAX + 64);
    /* SubjectPublicKeyInfo only (d2i_PUBKEY), which is also much faster than the generic
     * decoders: this runs on every enclave creation. */
    const unsigned char *p = m->pubkey;
    key = d2i_PUBKEY(NULL, &p, (long)m->pubkey_size);
    if (key == NULL || p != m->pubkey + m->pubkey_size) {
        rc = clst_err_set(err, CLST_E_MALFORMED, "manifest: the signer public key does not parse");
        goto out;
    }
    /* One key, one signer id: the bytes must be the key's canonical SubjectPublicKeyInfo. */
    if (clst_pkey_to_der(key, false, &der) != CLST_OK || der.size != m->pubkey_size ||
        memcmp(der.data, m->pubkey, der.size) != 0) {
        rc = clst_err_set(err, CLST_E_MALFORMED,
                          "manifest: the signer key is not a canonical DER public key");
        goto out;
    }
    if (alg_for_key(key) != m->sig_alg) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "manifest: the signer key does not match signature algorithm %u",
                          m->sig_alg);
        goto out;
    }
    enum clst_status st;
    if (m->sig_alg == SIG_PS256) {
        st = clst_rsa_pss_verify(key, CLST_HASH_SHA256, PSS_SALT_SIZE, manifest_bytes,
                                 m->signed_size, m->sig, m->sig_size);
    } else {
        enum clst_hash h = m->sig_alg == SIG_ES256 ? CLST_HASH_SHA256 : CLST_HASH_SHA384;
        st = clst_ecdsa_verify(key, h, CLST_SIG_RAW, manifest_bytes, m->signed_size, m->sig,
                               m->sig_size);
    }
    if (st != CLST_OK) {
        rc = clst_err_set(err, CLST_E_VERIFY,
                          "the manifest signature is invalid: the manifest was modified after "
                          "signing (re-sign the image with 'cloister enclave sign')");
        goto out;
    }
    if (out_key != NULL) {
        *out_key = key;
        key = NULL;
    }
    rc = CLST_OK;
out:
    EVP_PKEY_free(key);
    clst_buf_cleanup(&der);
    return rc;
}

enum clst_status
image_verify(const uint8_t *file, size_t size, struct clst_enclave_identity *out,
             struct clst_err *err)
{
    size_t image_size, msize;
    const uint8_t *mbytes;
    struct manifest m;
    uint8_t digest[48];
    struct clst_enclave_identity id;

    enum clst_status st = image_split(file, size, &image_size, &mbytes, &msize, err);
    if (st != CLST_OK) {
        return st;
    }
    st = manifest_parse(mbytes, msize, &m, err);
    if (st != CLST_OK) {
        return st;
    }
    uint8_t mhash[32];
    st = clst_sha256(mbytes, msize, mhash);
    if (st != CLST_OK) {
        return clst_err_set(err, st, "cannot hash the manifest");
    }
    if (!sig_cache_has(mhash)) {
        st = verify_sig(&m, mbytes, NULL, err);
        if (st != CLST_OK) {
            return st;
        }
        sig_cache_add(mhash);
    }
    if (m.image_size != image_size) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "the manifest was signed for an image of %llu bytes but the image "
                            "has %zu: the image was modified after signing",
                            (unsigned long long)m.image_size, image_size);
    }
    st = clst_hash(CLST_HASH_SHA384, file, image_size, digest);
    if (st != CLST_OK) {
        return clst_err_set(err, st, "cannot hash the image");
    }
    if (CRYPTO_memcmp(digest, m.image_hash, 48) != 0) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "the image does not match its manifest: the image was modified "
                            "after signing (rebuild and re-sign it)");
    }
    st = image_measure(file, image_size, m.flags, m.product_id, m.svn, m.heap_mib, digest);
    if (st != CLST_OK) {
        return clst_err_set(err, st, "cannot measure the image");
    }
    if (CRYPTO_memcmp(digest, m.mrenclave, 48) != 0) {
        return clst_err_set(err, CLST_E_VERIFY,
                            "the measurement in the manifest does not match the image and its "
                            "identity fields");
    }
    st = image_elf_check(file, image_size, err);
    if (st != CLST_OK) {
        return st;
    }
    memset(&id, 0, sizeof(id));
    memcpy(id.mrenclave, digest, 48);
    st = clst_sha256(m.pubkey, m.pubkey_size, id.mrsigner);
    if (st != CLST_OK) {
        return clst_err_set(err, st, "cannot hash the signer key");
    }
    id.product_id = m.product_id;
    id.svn = m.svn;
    id.debug = (m.flags & MANIFEST_FLAG_DEBUG) != 0;
    id.heap_mib = m.heap_mib;
    *out = id;
    return CLST_OK;
}

enum clst_status
image_sign_bytes(const uint8_t *elf, size_t elf_size, EVP_PKEY *key,
                 const struct clst_host_sign_params *params, struct clst_buf *out,
                 struct clst_enclave_identity *id, struct clst_err *err)
{
    struct clst_buf m = {0}, pk = {0}, sig = {0};
    uint8_t fixed[MANIFEST_FIXED_SIZE - 2], b[16];
    enum clst_status rc = CLST_E_INVAL, st;
    uint16_t alg = alg_for_key(key);
    uint32_t heap = params->heap_mib == 0 ? CLST_HOST_HEAP_DEFAULT_MIB : params->heap_mib;
    uint32_t flags = params->debug ? MANIFEST_FLAG_DEBUG : 0;
    uint8_t image_hash[48], mrenclave[48];

    clst_buf_init(&m, MANIFEST_MAX_SIZE);
    clst_buf_init(&pk, MANIFEST_PUBKEY_MAX);
    clst_buf_init(&sig, MANIFEST_SIG_MAX);
    if (alg == 0 || !clst_pkey_has_private(key)) {
        rc = clst_err_set(err, CLST_E_INVAL,
                          "the signing key must be a private EC P-256, EC P-384 or RSA "
                          "2048..4096 key");
        goto out;
    }
    if (heap > CLST_HOST_HEAP_MAX_MIB) {
        rc =
            clst_err_set(err, CLST_E_INVAL, "heap of %u MiB (1..%u)", heap, CLST_HOST_HEAP_MAX_MIB);
        goto out;
    }
    if (elf_size == 0 || elf_size > CLST_HOST_IMAGE_MAX_SIZE) {
        rc = clst_err_set(err, CLST_E_LIMIT, "the image has %zu bytes (1..%u)", elf_size,
                          CLST_HOST_IMAGE_MAX_SIZE);
        goto out;
    }
    rc = image_elf_check(elf, elf_size, err);
    if (rc != CLST_OK) {
        goto out;
    }
    if ((st = clst_hash(CLST_HASH_SHA384, elf, elf_size, image_hash)) != CLST_OK ||
        (st = image_measure(elf, elf_size, flags, params->product_id, params->svn, heap,
                            mrenclave)) != CLST_OK ||
        (st = clst_pkey_to_der(key, false, &pk)) != CLST_OK) {
        rc = clst_err_set(err, st, "cannot hash the image or encode the signer key");
        goto out;
    }
    memcpy(fixed, MANIFEST_MAGIC, 4);
    clst_put_le16(fixed + 4, MANIFEST_VERSION);
    clst_put_le16(fixed + 6, alg);
    clst_put_le32(fixed + 8, flags);
    clst_put_le16(fixed + 12, params->product_id);
    clst_put_le16(fixed + 14, params->svn);
    clst_put_le32(fixed + 16, heap);
    clst_put_le32(fixed + 20, 0);
    clst_put_le64(fixed + 24, (uint64_t)elf_size);
    memcpy(fixed + 32, image_hash, 48);
    memcpy(fixed + 80, mrenclave, 48);
    clst_put_le16(b, (uint16_t)pk.size);
    if ((st = clst_buf_append(&m, fixed, sizeof(fixed))) != CLST_OK ||
        (st = clst_buf_append(&m, b, 2)) != CLST_OK ||
        (st = clst_buf_append(&m, pk.data, pk.size)) != CLST_OK) {
        rc = clst_err_set(err, st, "cannot build the manifest");
        goto out;
    }
    if (alg == SIG_PS256) {
        st = clst_rsa_pss_sign(key, CLST_HASH_SHA256, PSS_SALT_SIZE, m.data, m.size, &sig);
    } else {
        st = clst_ecdsa_sign(key, alg == SIG_ES256 ? CLST_HASH_SHA256 : CLST_HASH_SHA384,
                             CLST_SIG_RAW, m.data, m.size, &sig);
    }
    if (st != CLST_OK) {
        rc = clst_err_set(err, st, "cannot sign the manifest");
        goto out;
    }
    clst_put_le16(b, (uint16_t)sig.size);
    if ((st = clst_buf_append(&m, b, 2)) != CLST_OK ||
        (st = clst_buf_append(&m, sig.data, sig.size)) != CLST_OK) {
        rc = clst_err_set(err, st, "cannot build the manifest");
        goto out;
    }
    clst_put_le32(b, (uint32_t)m.size);
    clst_put_le32(b + 4, 0);
    memcpy(b + 8, TRAILER_MAGIC, 8);
    if ((st = clst_buf_append(out, elf, elf_size)) != CLST_OK ||
        (st = clst_buf_append(out, m.data, m.size)) != CLST_OK ||
        (st = clst_buf_append(out, b, TRAILER_SIZE)) != CLST_OK) {
        rc = clst_err_set(err, st, "cannot assemble the signed image");
        goto out;
    }
    if (id != NULL) {
        memset(id, 0, sizeof(*id));
        memcpy(id->mrenclave, mrenclave, 48);
        if ((st = clst_sha256(pk.data, pk.size, id->mrsigner)) != CLST_OK) {
            rc = clst_err_set(err, st, "cannot hash the signer key");
            goto out;
        }
        id->product_id = params->product_id;
        id->svn = params->svn;
        id->debug = params->debug;
        id->heap_mib = heap;
    }
    rc = CLST_OK;
out:
    clst_buf_cleanup(&m);
    clst_buf_cleanup(&pk);
    clst_buf_cleanup(&sig);
    return rc;
}
