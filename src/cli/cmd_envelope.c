/*
 * cloister keygen | encrypt | decrypt | inspect: the .clst envelope from the command line.
 *
 * Outputs that are files are written to an anonymous temporary file (O_TMPFILE) beside the
 * target, or a hidden named one where O_TMPFILE is unavailable, and linked into place only
 * after the whole input has been processed and, for decrypt, authenticated: a failed or
 * interrupted decrypt leaves no plaintext on disk. Standard output cannot be taken back, which
 * every --help says.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cloister/crypto.h>
#include <cloister/envelope.h>

#include "cli/cli.h"
#include "kvprovider/kvprovider.h"

#define MAX_KEY_FILES      8
#define MAX_PROVIDERS      (MAX_KEY_FILES + 1) /* the key files and one vault provider */
#define PROGRESS_MIN_SIZE  ((uint64_t)64 << 20)
#define PROGRESS_PERIOD_NS 100000000ull

/* ---- small helpers ---------------------------------------------------------------------------- */

static void
human_size(uint64_t n, char *out, size_t cap)
{
    if (n >= ((uint64_t)1 << 30)) {
        snprintf(out, cap, "%.2f GiB", (double)n / (double)((uint64_t)1 << 30));
    } else if (n >= ((uint64_t)1 << 20)) {
        snprintf(out, cap, "%.1f MiB", (double)n / (double)((uint64_t)1 << 20));
    } else if (n >= 1024) {
        snprintf(out, cap, "%.1f KiB", (double)n / 1024.0);
    } else {
        snprintf(out, cap, "%llu bytes", (unsigned long long)n);
    }
}

static bool
is_dash(const char *s)
{
    return s != NULL && strcmp(s, "-") == 0;
}

static bool
ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a > b && strcmp(s + a - b, suffix) == 0;
}

/* getopt_long with our own messages: unknown options and missing arguments exit 2. */
static int
next_opt(int argc, char **argv, const char *shortopts, const struct option *longopts,
         const char *cmd, int *usage_rc)
{
    char spec[32];
    /* A leading ':' makes getopt report a missing argument as ':' and an unknown option as '?'. */
    snprintf(spec, sizeof(spec), ":%s", shortopts);
    int c = getopt_long(argc, argv, spec, longopts, NULL);
    const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "?";
    if (c == ':') {
        if (optopt != 0 && strncmp(arg, "--", 2) != 0) {
            *usage_rc = cli_usage_error(cmd, "option -%c needs an argument", optopt);
        } else {
            *usage_rc = cli_usage_error(cmd, "option %s needs an argument", arg);
        }
    } else if (c == '?') {
        if (optopt != 0) {
            *usage_rc = cli_usage_error(cmd, "unknown option -%c", optopt);
        } else {
            *usage_rc = cli_usage_error(cmd, "unknown option %s", arg);
        }
    }
    return c;
}

/* ---- progress bar ----------------------------------------------------------------------------- */

struct progress {
    const char *verb;
    uint64_t start_ns;
    uint64_t last_ns;
    bool shown;
};

static void
progress_cb(void *ctx, uint64_t done, uint64_t total)
{
    struct progress *p = ctx;
    uint64_t now = clst_monotonic_ns();
    char a[32], b[32];
    int width = 30;

    if (total == 0 || (now - p->last_ns < PROGRESS_PERIOD_NS && done < total)) {
        return;
    }
    p->last_ns = now;
    p->shown = true;
    int filled = (int)((double)width * (double)done / (double)total);
    double secs = (double)(now - p->start_ns) / 1e9;
    human_size(done, a, sizeof(a));
    human_size(total, b, sizeof(b));
    fprintf(stderr, "\r%s [", p->verb);
    for (int i = 0; i < width; i++) {
        fputc(i < filled ? '#' : '-', stderr);
    }
    fprintf(stderr, "] %3d%%  %s / %s  %.0f MB/s ", (int)(100.0 * (double)done / (double)total),
            a, b, secs > 0 ? (double)done / secs / 1e6 : 0.0);
    fflush(stderr);
}

static void
progress_end(struct progress *p)
{
    if (p->shown) {
        fputc('\n', stderr);
    }
}

/* ---- outputs: temporary file beside the target, linked in on success ------------------------ */

struct output {
    int fd;
    bool is_stdout;
    bool direct;           /* a device or pipe given by name: no temporary file */
    bool anonymous;        /* O_TMPFILE: nothing on disk until commit */
    bool force;
    char target[PATH_MAX];
    char tmp[PATH_MAX];    /* the named temporary file, when not anonymous */
};

static void
dir_of(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        snprintf(out, cap, ".");
    } else if (slash == path) {
        snprintf(out, cap, "/");
    } else {
        snprintf(out, cap, "%.*s", (int)(slash - path), path);
    }
}

static int
output_open(struct output *o, const char *cmd, const char *target, bool force, mode_t mode)
{
    char dir[PATH_MAX];
    struct stat st;

    memset(o, 0, sizeof(*o));
    o->fd = -1;
    o->force = force;
    if (is_dash(target)) {
        o->is_stdout = true;
        o->fd = STDOUT_FILENO;
        return CLI_EXIT_OK;
    }
    if (strlen(target) >= sizeof(o->target) - 16) {
        return cli_failf(cmd, "output path is too long: %s", target);
    }
    snprintf(o->target, sizeof(o->target), "%s", target);
    if (stat(target, &st) == 0 && (S_ISCHR(st.st_mode) || S_ISFIFO(st.st_mode))) {
        /* A device or pipe (/dev/null, a named pipe): written directly, like standard output. */
        o->fd = open(target, O_WRONLY | O_CLOEXEC | O_NOCTTY);
        if (o->fd < 0) {
            return cli_failf(cmd, "cannot open %s: %s", target, strerror(errno));
        }
        o->direct = true;
        return CLI_EXIT_OK;
    }
    if (lstat(target, &st) == 0) {
        if (!force) {
            return cli_failf(cmd, "%s already exists; use --force to replace it", target);
        }
        if (S_ISDIR(st.st_mode)) {
            return cli_failf(cmd, "%s is a directory", target);
        }
    }
    dir_of(target, dir, sizeof(dir));
    o->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
    if (o->fd >= 0) {
        o->anonymous = true;
        return CLI_EXIT_OK;
    }
    /* No O_TMPFILE here: a hidden named file, removed on failure. */
    const char *base = strrchr(target, '/');
    base = base == NULL ? target : base + 1;
    int n = snprintf(o->tmp, sizeof(o->tmp), "%s/.%s.XXXXXX", dir, base);
    if (n < 0 || (size_t)n >= sizeof(o->tmp)) {
        return cli_failf(cmd, "output path is too long: %s", target);
    }
    o->fd = mkostemp(o->tmp, O_CLOEXEC);
    if (o->fd < 0) {
        return cli_failf(cmd, "cannot create a temporary file in %s: %s", dir, strerror(errno));
    }
    if (fchmod(o->fd, mode) != 0) {
        int e = errno;
        unlink(o->tmp);
        close(o->fd);
        o->fd = -1;
        return cli_failf(cmd, "cannot set the mode of %s: %s", o->tmp, strerror(e));
    }
    return CLI_EXIT_OK;
}

/* Links an O_TMPFILE file at `path` (fails with EEXIST if path exists). */
static int
link_anonymous(int fd, const char *path)
{
    char proc[64];
    snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
    if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) == 0) {
        return 0;
    }
    if (errno == EEXIST) {
        return -1;
    }
    /* Without /proc: needs CAP_DAC_READ_SEARCH. */
    return linkat(fd, "", AT_FDCWD, path, AT_EMPTY_PATH);
}

static int
output_commit(struct output *o, const char *cmd)
{
    if (o->is_stdout) {
        return fflush(stdout) == 0 ? CLI_EXIT_OK
                                   : cli_failf(cmd, "cannot write to standard output: %s",
                                               strerror(errno));
    }
    if (o->direct) {
        int r = close(o->fd);
        o->fd = -1;
        return r == 0 ? CLI_EXIT_OK
                      : cli_failf(cmd, "cannot close %s: %s", o->target, strerror(errno));
    }
    if (o->anonymous) {
        if (!o->force) {
            /* No replacement wanted: linking fails if the target appeared meanwhile. */
            if (link_anonymous(o->fd, o->target) != 0) {
                return cli_failf(cmd, "cannot create %s: %s", o->target, strerror(errno));
            }
        } else {
            char dir[PATH_MAX];
            dir_of(o->target, dir, sizeof(dir));
            for (unsigned i = 0;; i++) {
                uint32_t r = 0;
                if (clst_random(&r, sizeof(r)) != CLST_OK) {
                    return cli_failf(cmd, "cannot draw a random name");
                }
                int n = snprintf(o->tmp, sizeof(o->tmp), "%s/.cloister-%08x.tmp", dir, r);
                if (n < 0 || (size_t)n >= sizeof(o->tmp)) {
                    o->tmp[0] = '\0';
                    return cli_failf(cmd, "output path is too long: %s", o->target);
                }
                if (link_anonymous(o->fd, o->tmp) == 0) {
                    break;
                }
                if (errno != EEXIST || i > 16) {
                    o->tmp[0] = '\0';
                    return cli_failf(cmd, "cannot create the output in %s: %s", dir,
                                     strerror(errno));
                }
            }
            if (rename(o->tmp, o->target) != 0) {
                int e = errno;
                unlink(o->tmp);
                o->tmp[0] = '\0';
                return cli_failf(cmd, "cannot replace %s: %s", o->target, strerror(e));
            }
            o->tmp[0] = '\0';
        }
    } else if (!o->force) {
        if (link(o->tmp, o->target) != 0) {
            return cli_failf(cmd, "cannot create %s: %s", o->target, strerror(errno));
        }
        unlink(o->tmp);
        o->tmp[0] = '\0';
    } else {
        if (rename(o->tmp, o->target) != 0) {
            return cli_failf(cmd, "cannot replace %s: %s", o->target, strerror(errno));
        }
        o->tmp[0] = '\0';
    }
    if (close(o->fd) != 0) {
        o->fd = -1;
        return cli_failf(cmd, "cannot close %s: %s", o->target, strerror(errno));
    }
    o->fd = -1;
    return CLI_EXIT_OK;
}

/* Throws the output away (nothing was linked; a named temporary file is removed). */
static void
output_abort(struct output *o)
{
    if (o->is_stdout) {
        fflush(stdout);
        return;
    }
    if (o->fd >= 0) {
        if (!o->anonymous && o->tmp[0] != '\0') {
            /* Empty it first so no plaintext lingers in the page cache of a visible name. */
            if (ftruncate(o->fd, 0) != 0) {
                /* Best effort: the file is unlinked just below anyway. */
            }
        }
        close(o->fd);
        o->fd = -1;
    }
    if (o->tmp[0] != '\0') {
        unlink(o->tmp);
        o->tmp[0] = '\0';
    }
}

static int
open_input(const char *cmd, const char *path, uint64_t *size)
{
    struct stat st;
    int fd;
    if (is_dash(path)) {
        fd = STDIN_FILENO;
    } else {
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            cli_failf(cmd, "cannot open %s: %s", path, strerror(errno));
            return -1;
        }
    }
    if (fstat(fd, &st) != 0) {
        cli_failf(cmd, "cannot stat %s: %s", path, strerror(errno));
        if (fd != STDIN_FILENO) {
            close(fd);
        }
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        cli_failf(cmd, "%s is a directory", path);
        close(fd);
        return -1;
    }
    *size = S_ISREG(st.st_mode) ? (uint64_t)st.st_size : 0;
    return fd;
}

static bool
parse_threads(const char *s, unsigned *out)
{
    uint64_t v = 0;
    if (clst_parse_u64(s, 1, 2, &v, NULL) != CLST_OK) {
        return false;
    }
    *out = (unsigned)v;
    return true;
}

/* ---- keygen ----------------------------------------------------------------------------------- */

static void
keygen_help(void)
{
    printf("usage: cloister keygen -o FILE [--type symmetric|rsa|p256] [--bits N]\n"
           "                       [--public-out FILE] [--force]\n"
           "\n"
           "Creates a key for 'cloister encrypt' / 'cloister decrypt'.\n"
           "\n"
           "  --type symmetric (default)  a 32-byte local key in a Cloister key file\n"
           "                              ('cloister-key-v1:' + 64 hex digits); encrypt and\n"
           "                              decrypt with --key-file FILE. Its key id (printed) is\n"
           "                              what encrypted files record.\n"
           "  --type rsa                  an RSA key pair (PKCS#8 PEM; --bits 2048..4096,\n"
           "                              default 3072); others encrypt to --recipient PUB.pem,\n"
           "                              you decrypt with --key-file FILE\n"
           "  --type p256                 an EC P-256 key pair (PKCS#8 PEM), used the same way\n"
           "  -o, --output FILE           where the secret key goes (created with mode 0600)\n"
           "  --public-out FILE           also write the public key (SubjectPublicKeyInfo PEM)\n"
           "  --force                     replace existing files (never done otherwise)\n"
           "  -h, --help                  this text\n"
           "\n"
           "Keep key files private: 'cloister decrypt' refuses a key file that group or others\n"
           "can read or write.\n"
           "\n"
           "exit status: 0 the key was written, 1 it could not be (the message says why),\n"
           "2 usage error.\n");
}

/* Creates path with mode, exclusively unless force. */
static int
create_file(const char *cmd, const char *path, bool force, mode_t mode, const void *data,
            size_t size)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    if (fd < 0 && errno == EEXIST && force) {
        if (unlink(path) != 0) {
            return cli_failf(cmd, "cannot replace %s: %s", path, strerror(errno));
        }
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
    }
    if (fd < 0) {
        if (errno == EEXIST) {
            return cli_failf(cmd, "%s already exists; use --force to replace it", path);
        }
        return cli_failf(cmd, "cannot create %s: %s", path, strerror(errno));
    }
    const uint8_t *p = data;
    size_t left = size;
    while (left > 0) {
        ssize_t n = write(fd, p, left);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            int e = errno;
            close(fd);
            unlink(path);
            return cli_failf(cmd, "cannot write %s: %s", path, strerror(e));
        }
        p += n;
        left -= (size_t)n;
    }
    if (fchmod(fd, mode) != 0 || fsync(fd) != 0 || close(fd) != 0) {
        int e = errno;
        unlink(path);
        return cli_failf(cmd, "cannot finish %s: %s", path, strerror(e));
    }
    return CLI_EXIT_OK;
}

int
cmd_keygen(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"output", required_argument, NULL, 'o'}, {"type", required_argument, NULL, 't'},
        {"bits", required_argument, NULL, 'b'},   {"public-out", required_argument, NULL, 'p'},
        {"force", no_argument, NULL, 'f'},        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = argv[0];
    const char *out = NULL, *pub_out = NULL, *type = "symmetric";
    uint64_t bits = 3072;
    bool force = false;
    int rc = CLI_EXIT_FAIL, urc = CLI_EXIT_USAGE, c;
    struct clst_buf text, pub;
    struct clst_err err;
    EVP_PKEY *key = NULL;

    if (cli_wants_help(argc, argv)) {
        keygen_help();
        return CLI_EXIT_OK;
    }
    optind = 1;
    opterr = 0;
    while ((c = next_opt(argc, argv, "o:", longopts, cmd, &urc)) != -1) {
        switch (c) {
        case 'o':
            out = optarg;
            break;
        case 't':
            type = optarg;
            break;
        case 'b':
            if (clst_parse_u64(optarg, CLST_RSA_MIN_BITS, CLST_RSA_MAX_BITS, &bits, NULL) !=
                    CLST_OK ||
                bits % 8 != 0) {
                return cli_usage_error(cmd, "--bits must be a multiple of 8 in %d..%d",
                                       CLST_RSA_MIN_BITS, CLST_RSA_MAX_BITS);
            }
            break;
        case 'p':
            pub_out = optarg;
            break;
        case 'f':
            force = true;
            break;
        default:
            return urc;
        }
    }
    if (optind != argc) {
        return cli_usage_error(cmd, "unexpected argument '%s'", argv[optind]);
    }
    if (out == NULL || is_dash(out)) {
        return cli_usage_error(cmd, "give the key file to create with -o FILE");
    }
    bool symmetric = strcmp(type, "symmetric") == 0;
    if (!symmetric && strcmp(type, "rsa") != 0 && strcmp(type, "p256") != 0) {
        return cli_usage_error(cmd, "--type must be symmetric, rsa or p256 (not '%s')", type);
    }
    if (symmetric && pub_out != NULL) {
        return cli_usage_error(cmd, "--public-out is for rsa and p256 keys");
    }
    clst_buf_init_secret(&text, 1u << 16);
    clst_buf_init(&pub, 1u << 16);
    clst_err_clear(&err);
    if (symmetric) {
        uint8_t k[CLST_ENVELOPE_KEY_SIZE], id[CLST_ENVELOPE_KEY_ID_SIZE];
        char hex[2 * CLST_ENVELOPE_KEY_ID_SIZE + 1];
        if (clst_envelope_key_generate(&text) != CLST_OK ||
            clst_envelope_key_parse((const char *)text.data, text.size, k, &err) != CLST_OK ||
            clst_envelope_key_id(k, id) != CLST_OK) {
            clst_wipe(k, sizeof(k));
            rc = cli_failf(cmd, "cannot generate a key");
            goto out;
        }
        clst_wipe(k, sizeof(k));
        rc = create_file(cmd, out, force, 0600, text.data, text.size);
        if (rc != CLI_EXIT_OK) {
            goto out;
        }
        clst_hex_to_str(id, sizeof(id), hex, sizeof(hex));
        printf("wrote %s (mode 0600)\nkey id: %s\n", out, hex);
        goto out;
    }
    enum clst_status st = strcmp(type, "rsa") == 0 ? clst_rsa_generate((int)bits, &key)
                                                   : clst_ec_generate(CLST_CURVE_P256, &key);
    if (st != CLST_OK || clst_pkey_to_pem(key, true, &text) != CLST_OK ||
        clst_pkey_to_pem(key, false, &pub) != CLST_OK) {
        rc = cli_failf(cmd, "cannot generate the %s key", type);
        goto out;
    }
    uint8_t fp[CLST_ENVELOPE_FINGERPRINT_SIZE];
    char fphex[2 * CLST_ENVELOPE_FINGERPRINT_SIZE + 1];
    if (clst_envelope_fingerprint(key, fp) != CLST_OK) {
        rc = cli_failf(cmd, "cannot fingerprint the key");
        goto out;
    }
    clst_hex_to_str(fp, sizeof(fp), fphex, sizeof(fphex));
    if (pub_out != NULL) {
        rc = create_file(cmd, pub_out, force, 0644, pub.data, pub.size);
        if (rc != CLI_EXIT_OK) {
            goto out;
        }
    }
    rc = create_file(cmd, out, force, 0600, text.data, text.size);
    if (rc != CLI_EXIT_OK) {
        if (pub_out != NULL) {
            unlink(pub_out);
        }
        goto out;
    }
    printf("wrote %s (private key, mode 0600)\n", out);
    if (pub_out != NULL) {
        printf("wrote %s (public key: give it to whoever encrypts for you)\n", pub_out);
    }
    printf("recipient fingerprint: SHA256:%s\n", fphex);
out:
    EVP_PKEY_free(key);
    clst_buf_cleanup(&text);
    clst_buf_cleanup(&pub);
    return rc;
}

/* ---- encrypt ---------------------------------------------------------------------------------- */

static void
encrypt_help(void)
{
    printf("usage: cloister encrypt (--key-file KEY | --recipient PUB.pem | --key vault:NAME)\n"
           "                        [-o OUT] [options] [INPUT]\n"
           "\n"
           "Encrypts INPUT (a file, or '-' for standard input; default '-') into the .clst\n"
           "format (docs/format.md): AES-256-GCM in 16 KiB chunks (C2SP chunked encryption),\n"
           "every kind of tampering detected on decryption.\n"
           "\n"
           "  -k, --key-file KEY     encrypt for a local key file made by 'cloister keygen'\n"
           "  -r, --recipient PUB    encrypt for the holder of the private key of PUB (a PEM\n"
           "                         public key, RSA 2048..4096 or EC P-256; 'cloister keygen\n"
           "                         --type rsa|p256 --public-out PUB')\n"
           "  --key vault:NAME[/VERSION]\n"
           "                         wrap the file's key with a key held in the vault (RSA:\n"
           "                         RSA-OAEP-256, oct: AES key wrap); the header names the\n"
           "                         vault, the key and its version (the latest when none is\n"
           "                         given), so decryption asks the vault or an attested TEE\n"
           "                         that the key was released to. Needs the wrapKey permission\n"
           "  --url URL              the vault, https://HOST:PORT (env CLOISTER_URL)\n"
           "  --token-file FILE      bearer token for the vault (env CLOISTER_TOKEN)\n"
           "  --ca FILE              the vault's CA certificate to pin, e.g. DIR/ca.pem (env\n"
           "                         CLOISTER_CA)\n"
           "  -o, --output OUT       the .clst file to write, or '-' for standard output;\n"
           "                         default INPUT.clst, or standard output for '-'\n"
           "  -m, --meta NAME=VALUE  record metadata in the header (repeatable, at most 32;\n"
           "                         NAME of a-z 0-9 . _ -). Metadata is authenticated but\n"
           "                         NOT encrypted: anyone can read it with 'cloister inspect'\n"
           "  -f, --force            replace OUT if it exists\n"
           "  --threads N            1 or 2 (default: 2 for files of 4 MiB and more)\n"
           "  -q, --quiet            no progress bar (shown on a terminal for inputs of 64 MiB\n"
           "                         and more)\n"
           "  -h, --help             this text\n"
           "\n"
           "OUT is written to a temporary file beside it and moved into place only when the\n"
           "whole input has been encrypted, so it never exists half-written. Ciphertext is\n"
           "never written to a terminal.\n"
           "\n"
           "exit status: 0 encrypted, 1 failed (nothing was created; on standard output, part\n"
           "of the ciphertext may have been written and must be discarded), 2 usage error.\n");
}

static int encrypt_run(int argc, char **argv, struct cli_vault_opts *vo);

/* encrypt and decrypt: --help, or run with vault connection options that are wiped after. */
static int
run_with_vault_opts(int argc, char **argv, void (*help)(void),
                    int (*run)(int argc, char **argv, struct cli_vault_opts *vo))
{
    if (cli_wants_help(argc, argv)) {
        help();
        return CLI_EXIT_OK;
    }
    struct cli_vault_opts vo;
    cli_vault_opts_init(&vo);
    int rc = run(argc, argv, &vo);
    cli_vault_opts_cleanup(&vo);
    return rc;
}

int
cmd_encrypt(int argc, char **argv)
{
    return run_with_vault_opts(argc, argv, encrypt_help, encrypt_run);
}

/* --url, --token-file, --ca: true when `c` was one of them. */
static bool
vault_opt(int c, struct cli_vault_opts *vo)
{
    switch (c) {
    case 'U':
        vo->cfg.url = optarg;
        return true;
    case 'F':
        vo->token_file = optarg;
        return true;
    case 'C':
        vo->cfg.ca_file = optarg;
        return true;
    default:
        return false;
    }
}

/* What encrypt and decrypt share beyond the keys: -f, --threads, -q. */
struct run_flags {
    bool force;
    bool quiet;
    unsigned threads;
};

/* -f, --threads, -q and the vault options (vault_opt). Returns CLI_EXIT_OK when `c` was one of
 * them, else the exit status to return: the usage error of --threads, or urc (next_opt's). */
static int
common_opt(int c, const char *cmd, struct run_flags *f, struct cli_vault_opts *vo, int urc)
{
    switch (c) {
    case 'f':
        f->force = true;
        return CLI_EXIT_OK;
    case 'T':
        if (!parse_threads(optarg, &f->threads)) {
            return cli_usage_error(cmd, "--threads must be 1 or 2");
        }
        return CLI_EXIT_OK;
    case 'q':
        f->quiet = true;
        return CLI_EXIT_OK;
    default:
        return vault_opt(c, vo) ? CLI_EXIT_OK : urc;
    }
}

/* The one INPUT after the options, if any (*in_path keeps its default otherwise). */
static int
one_input(int argc, char **argv, const char *cmd, const char **in_path)
{
    if (argc - optind > 1) {
        return cli_usage_error(cmd, "one INPUT at a time (got '%s' and '%s')", argv[optind],
                               argv[optind + 1]);
    }
    if (optind < argc) {
        *in_path = argv[optind];
    }
    return CLI_EXIT_OK;
}

/* Shows the progress bar for large inputs on a terminal, unless quiet. */
static void
progress_start(struct progress *prog, bool quiet, uint64_t in_size,
               struct clst_envelope_fd_opts *opts)
{
    if (!quiet && isatty(STDERR_FILENO) && in_size >= PROGRESS_MIN_SIZE) {
        prog->start_ns = clst_monotonic_ns();
        prog->last_ns = prog->start_ns; /* first update after one period, with a meaningful rate */
        opts->progress = progress_cb;
        opts->progress_ctx = prog;
    }
}

/* After the transform (st): commit the output, or throw it away with the error. */
static int
output_finish(struct output *out, const char *cmd, enum clst_status st, const struct clst_err *err)
{
    if (st != CLST_OK) {
        output_abort(out);
        return cli_fail(cmd, err);
    }
    int rc = output_commit(out, cmd);
    if (rc != CLI_EXIT_OK) {
        output_abort(out);
    }
    return rc;
}

/* Connects the provider for --key vault:NAME[/VERSION]. */
static int
vault_provider(const char *cmd, const char *ref, struct cli_vault_opts *vo,
               struct clst_envelope_provider **out)
{
#ifdef CLST_CLI_LITE
    (void)ref, (void)vo, (void)out;
    /* main() hands vault keys to cloister-full before any command runs. */
    return cli_failf(cmd, "vault keys are handled by cloister-full (not reached)");
#else
    char name[128], version[33];
    struct clst_err err;
    clst_err_clear(&err);
    if (clst_kvprovider_parse_ref(ref, name, version, &err) != CLST_OK) {
        return cli_usage_error(cmd, "--key %s: %s", ref, err.msg);
    }
    int rc = cli_vault_opts_finish(cmd, vo);
    if (rc != CLI_EXIT_OK) {
        return rc;
    }
    if (clst_kvprovider_new(&vo->cfg, name, version, out, &err) != CLST_OK) {
        return cli_fail(cmd, &err);
    }
    return CLI_EXIT_OK;
#endif
}

static int
encrypt_run(int argc, char **argv, struct cli_vault_opts *vo)
{
    static const struct option longopts[] = {
        {"key-file", required_argument, NULL, 'k'}, {"recipient", required_argument, NULL, 'r'},
        {"output", required_argument, NULL, 'o'},   {"meta", required_argument, NULL, 'm'},
        {"force", no_argument, NULL, 'f'},          {"threads", required_argument, NULL, 'T'},
        {"quiet", no_argument, NULL, 'q'},          {"help", no_argument, NULL, 'h'},
        {"key", required_argument, NULL, 'K'},      {"url", required_argument, NULL, 'U'},
        {"token-file", required_argument, NULL, 'F'}, {"ca", required_argument, NULL, 'C'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = argv[0];
    const char *key_file = NULL, *recipient = NULL, *out_path = NULL, *in_path = "-";
    const char *vault_key = NULL;
    struct clst_envelope_meta meta[CLST_ENVELOPE_META_MAX_COUNT];
    char meta_names[CLST_ENVELOPE_META_MAX_COUNT][CLST_ENVELOPE_META_NAME_MAX_SIZE + 1];
    size_t meta_count = 0;
    struct run_flags fl = {false, false, 0};
    int rc = CLI_EXIT_FAIL, urc = CLI_EXIT_USAGE, optrc, c, in_fd = -1;
    char default_out[PATH_MAX];
    struct clst_envelope_provider *provider = NULL;
    struct clst_err err;
    struct output out;
    struct progress prog = {"encrypting", 0, 0, false};
    uint64_t in_size = 0;

    memset(&out, 0, sizeof(out));
    out.fd = -1;
    optind = 1;
    opterr = 0;
    while ((c = next_opt(argc, argv, "k:r:o:m:fq", longopts, cmd, &urc)) != -1) {
        switch (c) {
        case 'k':
            if (key_file != NULL) {
                return cli_usage_error(cmd, "give --key-file once");
            }
            key_file = optarg;
            break;
        case 'r':
            if (recipient != NULL) {
                return cli_usage_error(cmd, "give --recipient once (one recipient per file)");
            }
            recipient = optarg;
            break;
        case 'o':
            out_path = optarg;
            break;
        case 'm': {
            const char *eq = strchr(optarg, '=');
            if (eq == NULL || eq == optarg ||
                (size_t)(eq - optarg) > CLST_ENVELOPE_META_NAME_MAX_SIZE) {
                return cli_usage_error(cmd, "--meta needs NAME=VALUE with a 1..64 character NAME");
            }
            if (meta_count == CLST_ENVELOPE_META_MAX_COUNT) {
                return cli_usage_error(cmd, "at most %d --meta entries",
                                       CLST_ENVELOPE_META_MAX_COUNT);
            }
            snprintf(meta_names[meta_count], sizeof(meta_names[meta_count]), "%.*s",
                     (int)(eq - optarg), optarg);
            meta[meta_count].name = meta_names[meta_count];
            meta[meta_count].value = (const uint8_t *)(eq + 1);
            meta[meta_count].value_size = strlen(eq + 1);
            meta_count++;
            break;
        }
        case 'K':
            if (vault_key != NULL) {
                return cli_usage_error(cmd, "give --key once");
            }
            vault_key = optarg;
            break;
        default:
            if ((optrc = common_opt(c, cmd, &fl, vo, urc)) != CLI_EXIT_OK) {
                return optrc;
            }
            break;
        }
    }
    if ((optrc = one_input(argc, argv, cmd, &in_path)) != CLI_EXIT_OK) {
        return optrc;
    }
    if ((key_file != NULL) + (recipient != NULL) + (vault_key != NULL) != 1) {
        return cli_usage_error(cmd, "give exactly one of --key-file KEY, --recipient PUB.pem or "
                                    "--key vault:NAME");
    }
    if (out_path == NULL) {
        if (is_dash(in_path)) {
            out_path = "-";
        } else {
            int n = snprintf(default_out, sizeof(default_out), "%s.clst", in_path);
            if (n < 0 || (size_t)n >= sizeof(default_out)) {
                return cli_usage_error(cmd, "INPUT path too long; give -o");
            }
            out_path = default_out;
        }
    }
    if (is_dash(out_path) && isatty(STDOUT_FILENO)) {
        return cli_failf(cmd, "refusing to write ciphertext to a terminal; give -o FILE or "
                              "redirect standard output");
    }

    clst_err_clear(&err);
    if (vault_key != NULL) {
        rc = vault_provider(cmd, vault_key, vo, &provider);
        if (rc != CLI_EXIT_OK) {
            goto out;
        }
        rc = CLI_EXIT_FAIL;
    } else if (key_file != NULL) {
        if (clst_envelope_provider_from_key_file(key_file, &provider, &err) != CLST_OK) {
            rc = cli_fail(cmd, &err);
            goto out;
        }
    } else if (clst_envelope_provider_from_recipient_file(recipient, &provider, &err) != CLST_OK) {
        rc = cli_fail(cmd, &err);
        goto out;
    }
    in_fd = open_input(cmd, in_path, &in_size);
    if (in_fd < 0) {
        goto out;
    }
    rc = output_open(&out, cmd, out_path, fl.force, 0644);
    if (rc != CLI_EXIT_OK) {
        goto out;
    }
    struct clst_envelope_fd_opts opts = {fl.threads, NULL, NULL, meta, meta_count, NULL};
    progress_start(&prog, fl.quiet, in_size, &opts);
    enum clst_status st = clst_envelope_encrypt_fd(in_fd, out.fd, provider, &opts, &err);
    progress_end(&prog);
    rc = output_finish(&out, cmd, st, &err);
out:
    if (in_fd > STDIN_FILENO) {
        close(in_fd);
    }
    clst_envelope_provider_free(provider);
    return rc;
}

/* ---- decrypt ---------------------------------------------------------------------------------- */

static void
decrypt_help(void)
{
    printf("usage: cloister decrypt (--key-file KEY [--key-file KEY2 ...] | --key vault:NAME |\n"
           "                         --vault) [-o OUT] [options] [INPUT]\n"
           "\n"
           "Decrypts and authenticates INPUT (a .clst file, or '-' for standard input; default\n"
           "'-').\n"
           "\n"
           "  -k, --key-file KEY   a key that may open the file: a local key file ('cloister\n"
           "                       keygen') or a PEM private key (RSA or P-256) whose public\n"
           "                       key the file was encrypted to. Repeatable: the one the file\n"
           "                       names is used. The file must not be readable by group or\n"
           "                       others (chmod 600).\n"
           "  --key vault:NAME[/VERSION]\n"
           "                       unwrap the file's key with this vault key (the vault does\n"
           "                       the unwrapping; needs the unwrapKey permission)\n"
           "  --vault              unwrap with whichever vault key the header names, asking\n"
           "                       the vault given by --url (never the URL in the header)\n"
           "  --url URL            the vault, https://HOST:PORT (env CLOISTER_URL)\n"
           "  --token-file FILE    bearer token for the vault (env CLOISTER_TOKEN)\n"
           "  --ca FILE            the vault's CA certificate to pin (env CLOISTER_CA)\n"
           "  -o, --output OUT     where the plaintext goes, or '-' for standard output;\n"
           "                       default INPUT without its .clst suffix, or standard output\n"
           "                       for '-'\n"
           "  -f, --force          replace OUT if it exists\n"
           "  --threads N          1 or 2 (default: 2 for files of 4 MiB and more; always 1\n"
           "                       when writing to standard output)\n"
           "  -q, --quiet          no progress bar (shown on a terminal for inputs of 64 MiB\n"
           "                       and more)\n"
           "  -h, --help           this text\n"
           "\n"
           "To a file: the plaintext goes to a temporary file beside OUT, which becomes OUT only\n"
           "after the whole input has been authenticated. If anything is wrong (wrong key,\n"
           "modified, truncated, reordered or spliced data) nothing is left on disk.\n"
           "\n"
           "To standard output (-o -, or INPUT '-' without -o): plaintext is written as each\n"
           "16 KiB chunk is verified, so if decryption fails part way, verified plaintext may\n"
           "ALREADY HAVE BEEN WRITTEN. The exit status is then 1: discard the output.\n"
           "\n"
           "exit status: 0 decrypted and authenticated, 1 failed (the message says why and\n"
           "which key the file needs), 2 usage error.\n");
}

static int decrypt_run(int argc, char **argv, struct cli_vault_opts *vo);

int
cmd_decrypt(int argc, char **argv)
{
    return run_with_vault_opts(argc, argv, decrypt_help, decrypt_run);
}

static int
decrypt_run(int argc, char **argv, struct cli_vault_opts *vo)
{
    static const struct option longopts[] = {
        {"key-file", required_argument, NULL, 'k'}, {"output", required_argument, NULL, 'o'},
        {"force", no_argument, NULL, 'f'},          {"threads", required_argument, NULL, 'T'},
        {"quiet", no_argument, NULL, 'q'},          {"help", no_argument, NULL, 'h'},
        {"key", required_argument, NULL, 'K'},      {"vault", no_argument, NULL, 'V'},
        {"url", required_argument, NULL, 'U'},      {"token-file", required_argument, NULL, 'F'},
        {"ca", required_argument, NULL, 'C'},       {NULL, 0, NULL, 0},
    };
    const char *cmd = argv[0];
    const char *key_files[MAX_KEY_FILES];
    size_t key_count = 0, provider_count = 0;
    const char *out_path = NULL, *in_path = "-";
    struct run_flags fl = {false, false, 0};
    int rc = CLI_EXIT_FAIL, urc = CLI_EXIT_USAGE, optrc, c, in_fd = -1;
    char default_out[PATH_MAX];
    struct clst_envelope_provider *providers[MAX_PROVIDERS];
    struct clst_err err;
    struct output out;
    struct progress prog = {"decrypting", 0, 0, false};
    uint64_t in_size = 0;
    const char *vault_key = NULL;
    bool any_vault = false;

    memset(&out, 0, sizeof(out));
    out.fd = -1;
    optind = 1;
    opterr = 0;
    while ((c = next_opt(argc, argv, "k:o:fq", longopts, cmd, &urc)) != -1) {
        switch (c) {
        case 'k':
            if (key_count == MAX_KEY_FILES) {
                return cli_usage_error(cmd, "at most %d --key-file options", MAX_KEY_FILES);
            }
            key_files[key_count++] = optarg;
            break;
        case 'o':
            out_path = optarg;
            break;
        case 'K':
            if (vault_key != NULL || any_vault) {
                return cli_usage_error(cmd, "give one --key vault:NAME or --vault");
            }
            vault_key = optarg;
            break;
        case 'V':
            if (vault_key != NULL) {
                return cli_usage_error(cmd, "give one --key vault:NAME or --vault");
            }
            any_vault = true;
            break;
        default:
            if ((optrc = common_opt(c, cmd, &fl, vo, urc)) != CLI_EXIT_OK) {
                return optrc;
            }
            break;
        }
    }
    if ((optrc = one_input(argc, argv, cmd, &in_path)) != CLI_EXIT_OK) {
        return optrc;
    }
    if (key_count == 0 && vault_key == NULL && !any_vault) {
        return cli_usage_error(cmd, "give the key with --key-file KEY, --key vault:NAME or "
                                    "--vault (run 'cloister inspect FILE' to see which key a "
                                    "file needs)");
    }
    if (out_path == NULL) {
        if (is_dash(in_path)) {
            out_path = "-";
        } else if (ends_with(in_path, ".clst")) {
            snprintf(default_out, sizeof(default_out), "%.*s", (int)(strlen(in_path) - 5),
                     in_path);
            out_path = default_out;
        } else {
            return cli_usage_error(cmd, "%s does not end in .clst: give the output with -o",
                                   in_path);
        }
    }

    clst_err_clear(&err);
    for (size_t i = 0; i < key_count; i++) {
        if (clst_envelope_provider_from_key_file(key_files[i], &providers[provider_count], &err) !=
            CLST_OK) {
            rc = cli_fail(cmd, &err);
            goto out;
        }
        provider_count++;
    }
    if (vault_key != NULL) {
        rc = vault_provider(cmd, vault_key, vo, &providers[provider_count]);
        if (rc != CLI_EXIT_OK) {
            goto out;
        }
        provider_count++;
        rc = CLI_EXIT_FAIL;
    } else if (any_vault) {
        rc = cli_vault_opts_finish(cmd, vo);
        if (rc != CLI_EXIT_OK) {
            goto out;
        }
        rc = CLI_EXIT_FAIL;
#ifdef CLST_CLI_LITE
        rc = cli_failf(cmd, "vault keys are handled by cloister-full (not reached)");
        goto out;
#else
        if (clst_kvprovider_any_new(&vo->cfg, &providers[provider_count], &err) != CLST_OK) {
            rc = cli_fail(cmd, &err);
            goto out;
        }
        provider_count++;
#endif
    }
    in_fd = open_input(cmd, in_path, &in_size);
    if (in_fd < 0) {
        goto out;
    }
    rc = output_open(&out, cmd, out_path, fl.force, 0600);
    if (rc != CLI_EXIT_OK) {
        goto out;
    }
    uint64_t written = 0;
    struct clst_envelope_fd_opts opts = {fl.threads, NULL, NULL, NULL, 0, &written};
    if (out.is_stdout || out.direct) {
        /* In order, one chunk at a time: what reached the output before a failure is exactly a
         * verified prefix (two threads could leave verified chunks after a gap). */
        opts.threads = 1;
    }
    progress_start(&prog, fl.quiet, in_size, &opts);
    enum clst_status st = clst_envelope_decrypt_fd(in_fd, out.fd, providers, provider_count,
                                                   &opts, &err);
    progress_end(&prog);
    rc = output_finish(&out, cmd, st, &err);
    if (st != CLST_OK && (out.is_stdout || out.direct) && written > 0) {
        fprintf(stderr,
                "cloister %s: verified plaintext may already have been written to "
                "%s: discard it\n",
                cmd, out.is_stdout ? "standard output" : out.target);
    }
out:
    if (in_fd > STDIN_FILENO) {
        close(in_fd);
    }
    for (size_t i = 0; i < provider_count; i++) {
        clst_envelope_provider_free(providers[i]);
    }
    return rc;
}

/* ---- inspect ---------------------------------------------------------------------------------- */

static void
inspect_help(void)
{
    printf("usage: cloister inspect FILE\n"
           "\n"
           "Shows the header of a .clst file (or '-' for standard input) without decrypting:\n"
           "format version, which key it was encrypted for and how the data key is wrapped,\n"
           "metadata, and the size of the plaintext implied by the file's length. No key is\n"
           "needed. Nothing shown is authenticated until the file is decrypted: a modified\n"
           "header is detected by 'cloister decrypt', not here.\n"
           "\n"
           "  -h, --help   this text\n"
           "\n"
           "exit status: 0 the header was read, 1 the file is not a valid .clst file (the\n"
           "message says why), 2 usage error.\n");
}

static void
print_escaped(const uint8_t *p, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        if (p[i] == '"' || p[i] == '\\') {
            printf("\\%c", p[i]);
        } else if (p[i] >= 0x20 && p[i] < 0x7f) {
            putchar(p[i]);
        } else {
            printf("\\x%02x", p[i]);
        }
    }
    putchar('"');
}

static bool
read_exact(int fd, uint8_t *buf, size_t size, size_t *got)
{
    *got = 0;
    while (*got < size) {
        ssize_t n = read(fd, buf + *got, size - *got);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            return false;
        }
        if (n == 0) {
            break;
        }
        *got += (size_t)n;
    }
    return true;
}

int
cmd_inspect(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd = argv[0];
    int rc = CLI_EXIT_FAIL, urc = CLI_EXIT_USAGE, c, fd = -1;
    uint8_t *hbuf = NULL;
    struct clst_envelope_header *h = NULL;
    struct clst_err err;
    uint64_t file_size = 0;
    size_t hsize = 0, got = 0;

    if (cli_wants_help(argc, argv)) {
        inspect_help();
        return CLI_EXIT_OK;
    }
    optind = 1;
    opterr = 0;
    while ((c = next_opt(argc, argv, "", longopts, cmd, &urc)) != -1) {
        return urc;
    }
    if (argc - optind != 1) {
        return cli_usage_error(cmd, "give exactly one FILE");
    }
    const char *path = argv[optind];
    fd = open_input(cmd, path, &file_size);
    if (fd < 0) {
        return CLI_EXIT_FAIL;
    }
    hbuf = malloc(CLST_ENVELOPE_HEADER_MAX_SIZE);
    h = malloc(sizeof(*h));
    if (hbuf == NULL || h == NULL) {
        rc = cli_failf(cmd, "out of memory");
        goto out;
    }
    clst_err_clear(&err);
    if (!read_exact(fd, hbuf, CLST_ENVELOPE_FIXED_SIZE, &got)) {
        rc = cli_failf(cmd, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    if (clst_envelope_header_peek_size(hbuf, got, &hsize, &err) != CLST_OK) {
        rc = cli_failf(cmd, "%s: %s", path, err.msg);
        goto out;
    }
    if (!read_exact(fd, hbuf + got, hsize - got, &got)) {
        rc = cli_failf(cmd, "cannot read %s: %s", path, strerror(errno));
        goto out;
    }
    if (clst_envelope_header_parse(hbuf, CLST_ENVELOPE_FIXED_SIZE + got, h, &err) != CLST_OK) {
        rc = cli_failf(cmd, "%s: %s", path, err.msg);
        goto out;
    }
    char ref[512];
    clst_envelope_keyref_describe(&h->ref, ref, sizeof(ref));
    printf("file:         %s\n", path);
    printf("format:       .clst version %u, suite %u (Cobblestone-256: AES-256-GCM in 16 KiB "
           "chunks, HKDF-SHA-512, key-committing)\n",
           h->version, h->suite);
    printf("header:       %zu bytes\n", h->size);
    printf("encrypted for: %s\n", ref);
    printf("wrapped key:  %s, %zu bytes\n", h->wrapped.alg, h->wrapped.size);
    if (h->meta_count == 0) {
        printf("metadata:     (none)\n");
    }
    for (size_t i = 0; i < h->meta_count; i++) {
        const char *name;
        const uint8_t *value;
        size_t name_size, value_size;
        clst_envelope_header_meta(h, i, &name, &name_size, &value, &value_size);
        printf("%s%.*s = ", i == 0 ? "metadata:     " : "              ", (int)name_size, name);
        print_escaped(value, value_size);
        putchar('\n');
    }
    if (file_size > 0) {
        uint64_t body = file_size - h->size, chunks = 0, pt = 0;
        size_t final_size = 0;
        char a[32];
        if (file_size < h->size) {
            printf("body:         missing (the file ends inside the header)\n");
        } else {
            /* Geometry from the length: what decryption will expect and authenticate. */
            if (body < CLST_ENVELOPE_PREFIX_SIZE ||
                (body - CLST_ENVELOPE_PREFIX_SIZE) % CLST_ENVELOPE_CT_CHUNK_SIZE <
                    CLST_ENVELOPE_TAG_SIZE) {
                printf("body:         %llu bytes: TRUNCATED (not a possible body length; "
                       "decryption will fail)\n",
                       (unsigned long long)body);
            } else {
                uint64_t rest = body - CLST_ENVELOPE_PREFIX_SIZE;
                chunks = rest / CLST_ENVELOPE_CT_CHUNK_SIZE + 1;
                final_size = (size_t)(rest % CLST_ENVELOPE_CT_CHUNK_SIZE) - CLST_ENVELOPE_TAG_SIZE;
                pt = (chunks - 1) * CLST_ENVELOPE_CHUNK_SIZE + final_size;
                human_size(pt, a, sizeof(a));
                printf("body:         %llu bytes in %llu chunk%s (final chunk %zu bytes)\n",
                       (unsigned long long)body, (unsigned long long)chunks,
                       chunks == 1 ? "" : "s", final_size);
                if (pt >= 1024) {
                    printf("plaintext:    %llu bytes (%s), if the file is intact\n",
                           (unsigned long long)pt, a);
                } else {
                    printf("plaintext:    %llu bytes, if the file is intact\n",
                           (unsigned long long)pt);
                }
            }
        }
    }
    printf("note:         nothing above is authenticated until the file is decrypted\n");
    rc = CLI_EXIT_OK;
out:
    if (fd > STDIN_FILENO) {
        close(fd);
    }
    free(hbuf);
    free(h);
    return rc;
}
