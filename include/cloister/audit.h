/*
 * Cloister audit: the vault's tamper-evident, fail-closed audit log (docs/operations.md ("Audit")).
 *
 * Every request the server routes to the vault or the attestation service is appended to a log
 * of JSON lines. Each line is one record:
 *
 *   {"seq":N,"time":"…","type":"…",<members>,"prev":"<hex>","hash":"<hex>"}
 *
 * where `prev` is the `hash` of the record before it (64 zeros for the very first record) and
 * `hash` is the SHA-256 of the line's bytes up to (not including) `,"hash":"`. Every N records,
 * before a file is rotated and when the log is closed, a checkpoint record signs the chain with
 * the audit key (ECDSA P-256 or P-384):
 *
 *   {"seq":N,"time":"…","type":"checkpoint","reason":"every"|"rotate"|"close","alg":"ES256",
 *    "kid":"<hex>","prev":"<hex>","sig":"<base64url r||s>","hash":"<hex>"}
 *
 * whose `sig` covers the line's bytes up to (not including) `,"sig":"`, i.e. the sequence number
 * and the hash of everything before. Records carry names, ids and hashes only, never key
 * material or secret values.
 *
 * Files are DIR/audit-<first seq, 20 digits>.jsonl; the first record of a rotated file is
 * {"type":"continue","prev_file":"<previous file's name>",…} whose `prev` is the previous file's
 * last hash, so the chain runs across files.
 *
 * Durability: clst_audit_append() returns only once its record has been written and fdatasync'ed
 * (group commit: the first appender that finds no batch in flight writes and syncs whatever
 * is queued, so concurrent requests share a sync). When a write or a sync fails the log enters a
 * sticky failed state: every later append fails at once (CLST_E_IO) until the process restarts, so
 * nothing changes without a record.
 *
 * Room written ahead and space reserve: the writer keeps at least `reserve` zero bytes written
 * past the last record of the current file, and batches overwrite them (so a batch's fdatasync
 * does not also write the inode for a new file size). When that room cannot be kept (the disk
 * is full), ordinary appends are refused (CLST_E_IO, not sticky: they are accepted again once
 * there is room), while appends flagged CLST_AUDIT_RESERVED (the outcome of a request whose
 * attempt is already recorded) still go into the room that is left. So a full disk refuses new
 * requests before they do anything, instead of failing them after their effect (on file systems
 * that write in place; on a copy-on-write one an overwrite needs new space, and open warns). An
 * ordinary append is accepted only if `reserve` bytes of room stay after it. A clean close and a
 * rotation cut the zeros off; after a crash they stay, and every reader here takes zero bytes
 * after the last record as the end of the data (zeros followed by data are damage).
 */
#ifndef CLOISTER_AUDIT_H
#define CLOISTER_AUDIT_H

#include <cloister/core.h>

#include <openssl/evp.h>

#define CLST_AUDIT_DIR_NAME                 "audit"     /* DATA/audit */
#define CLST_AUDIT_KEY_FILE                 "audit.key" /* DATA/audit.key (0600) */
#define CLST_AUDIT_PUB_FILE                 "audit.pub" /* DATA/audit.pub */
#define CLST_AUDIT_DEFAULT_MAX_SIZE         (64u * 1024u * 1024u)
#define CLST_AUDIT_MIN_MAX_SIZE             4096u
#define CLST_AUDIT_DEFAULT_CHECKPOINT_EVERY 1000u
#define CLST_AUDIT_LINE_MAX                 16384u /* bytes of one record, newline included */
#define CLST_AUDIT_HASH_HEX_SIZE            65u    /* 64 hex characters + NUL */
#define CLST_AUDIT_DEFAULT_RESERVE          (64u * 1024u) /* zero bytes kept past the end */
#define CLST_AUDIT_DEFAULT_COMMIT_DELAY_US  1000          /* see clst_audit_expect_begin */
#define CLST_AUDIT_MAX_COMMIT_DELAY_US      100000

struct clst_server;
struct clst_audit;

struct clst_audit_config {
    const char *dir;           /* log directory (created 0700 when absent) */
    const char *key_path;      /* ECDSA private key, PEM; a P-256 key is made (0600) if absent */
    const char *pub_path;      /* its public key, PEM, written when the key is made; may be NULL */
    uint64_t max_file_size;    /* rotate once a file reaches this many bytes; 0: default */
    uint64_t checkpoint_every; /* records between signed checkpoints; 0: default */
    uint64_t reserve;          /* zero bytes kept written past the last record; 0: default */
    /* Longest time, in microseconds, that the writer thread holds a batch while appends are
     * expected (clst_audit_expect_begin); 0: default; negative: never hold a batch. */
    int commit_delay_us;
};

void clst_audit_config_init(struct clst_audit_config *cfg);

/*
 * Opens the log: loads (or makes) the audit key, finds the newest file in cfg->dir, checks that
 * its last record is intact (a torn or invalid last record refuses to open, with the file and
 * line: repair it, see docs/operations.md ("Audit")), appends a "start" record ("recovered": true when
 * the previous run did not end with a closing checkpoint). No thread is started: appenders write
 * the batches themselves.
 */
enum clst_status clst_audit_open(const struct clst_audit_config *cfg, struct clst_audit **out,
                                 struct clst_err *err);

/*
 * Writes the closing checkpoint, stops the writer and frees. Call after the server has stopped.
 * NULL is a no-op (CLST_OK). Returns CLST_E_IO when the checkpoint could not be written (the
 * object is freed anyway).
 */
enum clst_status clst_audit_close(struct clst_audit *a, struct clst_err *err);

/*
 * Reports each successful group commit's latency (write + fdatasync, in seconds) as
 * sink(ctx, "cloister_audit_sync_seconds", seconds); the signature is clst_metrics_sink's. Set it
 * before the first append; NULL turns it off.
 */
void clst_audit_sink_set(struct clst_audit *a, void (*sink)(void *ctx, const char *name,
                                                            double value),
                         void *ctx);

#define CLST_AUDIT_RESERVED 0x1u /* may use the space reserve (see above) */

/*
 * Appends one record and waits until it is durable. `members` is a JSON object text without
 * braces and without a leading comma (e.g. "\"type\":\"attempt\",\"op\":\"keys.create\""): the
 * members after "seq" and "time". It must not name "seq", "time", "prev", "hash" or "sig".
 * CLST_E_IO (with a message for the client) when the log cannot be written, now or earlier.
 * out_seq (may be NULL) receives the record's sequence number. Thread-safe.
 */
enum clst_status clst_audit_append(struct clst_audit *a, const char *members, unsigned flags,
                                   uint64_t *out_seq, struct clst_err *err);

/*
 * The asynchronous form: queues the record and returns at once (CLST_OK), or refuses at once
 * (CLST_E_IO when the log has failed or is closing, as clst_audit_append). Once queued, done()
 * is called exactly once, from another thread, when the record is durable (st CLST_OK, seq its
 * sequence number) or cannot be (st CLST_E_IO, err says why, as clst_audit_append's). `members`
 * is copied. A writer thread, started at the first call, leads the batches that such appends
 * begin. done() must not block for long: it holds up the next batch's callers.
 */
typedef void (*clst_audit_done_fn)(void *ctx, enum clst_status st, uint64_t seq,
                                   const struct clst_err *err);
enum clst_status clst_audit_append_async(struct clst_audit *a, const char *members,
                                         unsigned flags, clst_audit_done_fn done, void *ctx,
                                         struct clst_err *err);

/*
 * Hints for the writer thread's group commit. A caller that will append asynchronously soon
 * (the server, while a read-only request's handler runs: its outcome record follows within
 * microseconds) calls clst_audit_expect_begin() before and clst_audit_expect_end() once its
 * append is queued. While appends are expected, the writer thread holds the batch it is about to
 * write, until the expected appends are queued or the configured commit delay (commit_delay_us)
 * has passed, so that they share its sync: a sync costs far more than the wait. Under steady load
 * new announcements keep the count above zero, and batches are then held the whole delay. No
 * batch is held that a thread waits in (clst_audit_append), that had CLST_AUDIT_DELAY_BATCH
 * records or more when the hold would begin, or while the log is closing. The wait is bounded,
 * so a hint never followed by an append only delays batches, and every record is still durable
 * before its done() is called. Lock-free; from any thread; every begin needs one end.
 */
#define CLST_AUDIT_DELAY_BATCH 64u
void clst_audit_expect_begin(struct clst_audit *a);
void clst_audit_expect_end(struct clst_audit *a);

/*
 * Registers the audit observer on `server` (before clst_server_start): `before` appends an
 * "attempt" record and waits for it (no handler runs without a durable attempt) for every
 * operation that may change state; read-only ones (GET; POST …/encrypt, decrypt, sign, verify,
 * wrapkey, unwrapkey, release, backup; POST /rng) get no attempt record, since their only effect
 * is the answer, which waits for the outcome record. `after` appends
 * the "outcome" record (status, result, the handler's notes, "attempt": the attempt's seq) and
 * waits for it before the response is queued; outcomes of recorded attempts use the reserve. When the outcome cannot be written the client gets 503 even though the
 * handler's effect may have happened (the attempt record is durable and says what was tried),
 * and the log refuses every later request. GET /healthz and GET /metrics are not recorded.
 */
enum clst_status clst_audit_observe(struct clst_audit *a, struct clst_server *server,
                                    struct clst_err *err);

/* Counters for /metrics and benchmarks. */
struct clst_audit_stats {
    uint64_t records;      /* records made durable since open */
    uint64_t syncs;        /* fdatasync calls that succeeded */
    uint64_t sync_ns_total; /* time spent writing + syncing */
    uint64_t sync_ns_max;
    uint64_t queue_depth;  /* records waiting now */
    uint64_t last_seq;
    uint64_t refused_no_space; /* appends refused because the reserve could not be kept */
    bool low_space;        /* the reserve cannot be kept now */
    bool failed;           /* the sticky failed state */
    uint64_t held_batches; /* batches the writer held for expected appends */
    uint64_t expected;     /* appends announced and not yet queued (clst_audit_expect_begin) */
};
void clst_audit_stats_get(struct clst_audit *a, struct clst_audit_stats *out);

/* The operation name the observer records for a route ("keys.encrypt", "attest.SevSnpVm", …):
 * literal segments joined by '.', plus a verb (get/list/set/update/delete/post) when the route
 * ends with a parameter or has a single segment. out: cap >= 64. */
void clst_audit_op_name(const char *method, const char *route, const char *type_param, char *out,
                        size_t cap);

/* ---- verification --------------------------------------------------------------------------- */

/* Loads an audit public key (PEM, P-256 or P-384). */
enum clst_status clst_audit_pub_load(const char *path, EVP_PKEY **out, struct clst_err *err);

/* One parsed record (its fields point into `obj`). */
struct clst_audit_record {
    uint64_t seq;
    char type[16];
    char prev[CLST_AUDIT_HASH_HEX_SIZE];
    char hash[CLST_AUDIT_HASH_HEX_SIZE];
    void *obj; /* json_t *, owned: clst_audit_record_cleanup */
};
void clst_audit_record_cleanup(struct clst_audit_record *r);

/*
 * Parses one line (without its '\n') and checks what a line alone can show: a JSON object with
 * unique members, "seq" first, the structure above, and that `hash` is the SHA-256 of the line's
 * prefix. CLST_E_MALFORMED / CLST_E_VERIFY with what is wrong.
 */
enum clst_status clst_audit_record_parse(const char *line, size_t size,
                                         struct clst_audit_record *out, struct clst_err *err);

/*
 * A streaming verifier: files in order, lines in order. The first error stops it and is
 * remembered (bad_file, bad_line, bad_seq, msg).
 */
struct clst_audit_verify {
    EVP_PKEY *pub; /* borrowed; required for checkpoints */
    char kid[CLST_AUDIT_HASH_HEX_SIZE];
    /* progress */
    size_t file_count;
    char file[256];    /* the current file's name (basename) */
    uint64_t line_no;  /* 1-based line in the current file */
    bool have_last;
    uint64_t last_seq;
    char last_hash[CLST_AUDIT_HASH_HEX_SIZE];
    char last_type[16];
    char last_reason[16];
    char prev_file[256]; /* the previous file's name */
    uint64_t records, checkpoints, unsigned_tail; /* records after the last checkpoint */
    bool anchored;    /* the chain starts at the genesis record (seq 1) */
    char start_note[256];
    /* the first error */
    bool bad;
    uint64_t bad_line;
    uint64_t bad_seq; /* 0 when the line had no readable seq */
    char bad_file[256];
    char msg[CLST_ERR_MSG_SIZE];
};

/* `pub` may be NULL only when the log holds no checkpoint (any checkpoint then fails). */
enum clst_status clst_audit_verify_init(struct clst_audit_verify *v, EVP_PKEY *pub,
                                        struct clst_err *err);
/* Starts a file named `name` (its basename is compared with the next file's prev_file). */
void clst_audit_verify_file(struct clst_audit_verify *v, const char *name);
/* One line without its '\n'. CLST_E_VERIFY / _MALFORMED once the verifier has failed. */
enum clst_status clst_audit_verify_line(struct clst_audit_verify *v, const char *line, size_t size);
/* Marks that the current file's last line had no '\n' (a torn write or a truncation). */
void clst_audit_verify_torn(struct clst_audit_verify *v);
/*
 * After the last line: CLST_OK when every record checked out and the log ends with a closing
 * checkpoint (or allow_open). An empty log is an error.
 */
enum clst_status clst_audit_verify_end(struct clst_audit_verify *v, bool allow_open);

/* Reads and verifies files in order (each line capped at CLST_AUDIT_LINE_MAX). */
enum clst_status clst_audit_verify_files(struct clst_audit_verify *v, const char *const *paths,
                                         size_t count, bool allow_open, struct clst_err *err);

/* The log files of `dir` (audit-*.jsonl) in chain order; free each and the array with free(). */
enum clst_status clst_audit_list_files(const char *dir, char ***out, size_t *out_count,
                                       struct clst_err *err);

#endif /* CLOISTER_AUDIT_H */
