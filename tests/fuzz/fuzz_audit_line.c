/*
 * Fuzz harness for the audit log verifier (src/audit/record.c, src/audit/verify.c), which reads
 * log files an attacker may have edited. The input is a log: lines separated by '\n'; a line
 * "#file NAME" starts the next file. Every line is parsed alone (clst_audit_record_parse) and fed
 * to a streaming verifier holding a fixed P-256 audit public key (the seed corpus was written
 * with its private key, which is not kept), then the end is checked both strictly and with
 * allow_open. The whole input is also verified as one file through the file reader
 * (clst_audit_verify_files, from a memfd), which ends the data at zero bytes after the last
 * record (room the service writes ahead) and refuses data after zeros. Nothing may crash, leak or
 * read out of bounds; only a log signed with that key can pass strict verification.
 */
#define _GNU_SOURCE /* memfd_create */
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/pem.h>

#include <cloister/audit.h>

static const char audit_pub[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAExdkM25MK7PLNY5tSxMtkyhL7B6q7\n"
    "ReaGcZYCLzSQVZiRuoMrHKwAaNwDg3KoySeYu7aYGB3K3pR31xAZzEerQg==\n"
    "-----END PUBLIC KEY-----\n";

static EVP_PKEY *pub;

static EVP_PKEY *
load_pub(void)
{
    if (pub == NULL) {
        BIO *b = BIO_new_mem_buf(audit_pub, (int)strlen(audit_pub));
        pub = PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
        BIO_free(b);
        if (pub == NULL) {
            abort();
        }
    }
    return pub;
}

static void
run(const uint8_t *data, size_t size, bool allow_open)
{
    struct clst_audit_verify v;
    if (clst_audit_verify_init(&v, load_pub(), NULL) != CLST_OK) {
        abort();
    }
    clst_audit_verify_file(&v, "audit-00000000000000000001.jsonl");
    size_t start = 0;
    for (size_t i = 0; i <= size; i++) {
        if (i < size && data[i] != '\n') {
            continue;
        }
        const char *line = (const char *)data + start;
        size_t n = i - start;
        start = i + 1;
        if (i == size) {
            if (n > 0) {
                clst_audit_verify_torn(&v); /* no final newline */
            }
            break;
        }
        if (n > 6 && memcmp(line, "#file ", 6) == 0) {
            char name[128];
            size_t m = n - 6 < sizeof(name) - 1 ? n - 6 : sizeof(name) - 1;
            memcpy(name, line + 6, m);
            name[m] = '\0';
            clst_audit_verify_file(&v, name);
            continue;
        }
        struct clst_audit_record r;
        if (!allow_open && clst_audit_record_parse(line, n, &r, NULL) == CLST_OK) {
            clst_audit_record_cleanup(&r);
        }
        (void)clst_audit_verify_line(&v, line, n);
    }
    (void)clst_audit_verify_end(&v, allow_open);
}

/* The input as one file, through the file reader. */
static void
run_file(const uint8_t *data, size_t size)
{
    struct clst_audit_verify v;
    char path[64];
    int fd = memfd_create("fuzz-audit", MFD_CLOEXEC);
    if (fd < 0) {
        abort();
    }
    for (size_t done = 0; done < size;) {
        ssize_t w = write(fd, data + done, size - done);
        if (w <= 0) {
            abort();
        }
        done += (size_t)w;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    const char *files[1] = {path};
    if (clst_audit_verify_init(&v, load_pub(), NULL) != CLST_OK) {
        abort();
    }
    (void)clst_audit_verify_files(&v, files, 1, true, NULL);
    close(fd);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run(data, size, false);
    run(data, size, true);
    run_file(data, size);
    return 0;
}
