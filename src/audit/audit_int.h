/* Private to src/audit: the record format shared by the writer (log.c) and the verifier. */
#ifndef CLST_AUDIT_INT_H
#define CLST_AUDIT_INT_H

#include <cloister/audit.h>
#include <cloister/crypto.h>

#define AUDIT_HASH_SUFFIX     ",\"hash\":\""           /* then 64 hex, then "}" */
#define AUDIT_HASH_SUFFIX_LEN 9u
#define AUDIT_HASH_TAIL_LEN   (AUDIT_HASH_SUFFIX_LEN + 64u + 2u)
#define AUDIT_SIG_MARK        ",\"sig\":\""
#define AUDIT_SIG_MARK_LEN    8u
#define AUDIT_ZERO_HASH       "0000000000000000000000000000000000000000000000000000000000000000"
#define AUDIT_FILE_PREFIX     "audit-"
#define AUDIT_FILE_SUFFIX     ".jsonl"
#define AUDIT_NAME_MAX        64u

/* The audit key: ECDSA P-256 (ES256) or P-384 (ES384), its kid (hex SHA-256 of the SPKI DER). */
struct audit_key {
    EVP_PKEY *pkey;
    enum clst_hash hash;
    const char *alg;
    size_t sig_size; /* raw r||s */
    char kid[CLST_AUDIT_HASH_HEX_SIZE];
};

/* Fills alg/hash/sig_size/kid from a P-256 or P-384 key (the key is borrowed). */
enum clst_status audit_key_describe(EVP_PKEY *pkey, struct audit_key *out, struct clst_err *err);
/* Loads the private key, or makes a P-256 one (key 0600, pub 0644) when key_path is absent. */
enum clst_status audit_key_load_or_make(const char *key_path, const char *pub_path,
                                        struct audit_key *out, struct clst_err *err);

/* Lower-case hex SHA-256 of data. */
enum clst_status audit_sha256_hex(const void *data, size_t size,
                                  char out[static CLST_AUDIT_HASH_HEX_SIZE]);

/* "YYYY-MM-DDTHH:MM:SS.mmmZ" of the wall clock. */
void audit_time_now(char out[static 32]);

/*
 * Appends a complete record line (with '\n') to `out`: seq, time, members, prev, (sig for a
 * checkpoint when key != NULL), hash. out_hash receives the record's hash.
 */
enum clst_status audit_format_line(struct clst_buf *out, uint64_t seq, const char *time,
                                   const char *members, const char *prev,
                                   const struct audit_key *key,
                                   char out_hash[static CLST_AUDIT_HASH_HEX_SIZE]);

/* Parses "audit-<20 digits>.jsonl"; true with the first seq. */
bool audit_file_name_parse(const char *name, uint64_t *out_seq);

#endif
