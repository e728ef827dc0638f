/*
 * Tests for src/tee/tpm.c against a real software TPM: the test starts swtpm (Debian's swtpm) on
 * free loopback ports, collects quotes with each AK algorithm and verifies them with the "tpm"
 * evidence verifier (enrolled AK, nonce); extends PCRs with the digests of an event log built
 * here and checks that the collected evidence replays; checks that the AK is deterministic, that
 * no transient object is left in the TPM (there is no resource manager), and the errors (no TPM,
 * bad requests, an AK certificate for another key). Also the PCR selection parser.
 *
 * swtpm missing is a failure, not a skip (scripts/deps.sh installs it).
 */
#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/x509v3.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_tctildr.h>

#include <cloister/tee.h>

#include "unit/evidence/test_tpm_fixture.h"

static pid_t swtpm_pid = -1;
static char state_dir[64];
static char tcti[96];
static int swtpm_port;

static bool
port_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    if (fd >= 0) {
        close(fd);
    }
    return ok;
}

/* Starts swtpm on ports P, P+1; swtpm itself binds (no probe race), and another pair is tried
 * when it cannot. */
static int
start_swtpm(void **state)
{
    (void)state;
    snprintf(state_dir, sizeof(state_dir), "/tmp/clst-swtpm-XXXXXX");
    if (mkdtemp(state_dir) == NULL) {
        return -1;
    }
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    for (int attempt = 0; attempt < 20; attempt++) {
        int port = 20000 + (rand() % 20000) * 2;
        char dir[128], server[96], ctrl[96];
        snprintf(dir, sizeof(dir), "dir=%s", state_dir);
        snprintf(server, sizeof(server), "type=tcp,port=%d,bindaddr=127.0.0.1", port);
        snprintf(ctrl, sizeof(ctrl), "type=tcp,port=%d,bindaddr=127.0.0.1", port + 1);
        pid_t pid = fork();
        if (pid < 0) {
            return -1;
        }
        if (pid == 0) {
            /* If this test dies (an assertion, a sanitizer), swtpm goes with it. */
            prctl(PR_SET_PDEATHSIG, SIGTERM);
            int null = open("/dev/null", O_RDWR);
            if (null >= 0) {
                dup2(null, 1);
                dup2(null, 2);
            }
            execlp("swtpm", "swtpm", "socket", "--tpmstate", dir, "--tpm2", "--server", server,
                   "--ctrl", ctrl, "--flags", "not-need-init,startup-clear", (char *)NULL);
            _exit(127);
        }
        for (int i = 0; i < 100; i++) {
            int status;
            if (waitpid(pid, &status, WNOHANG) == pid) {
                if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
                    fprintf(stderr, "swtpm is not installed (scripts/deps.sh installs it)\n");
                    return -1;
                }
                pid = -1;
                break;
            }
            if (port_open(port)) {
                swtpm_pid = pid;
                swtpm_port = port;
                snprintf(tcti, sizeof(tcti), "swtpm:host=127.0.0.1,port=%d", port);
                return 0;
            }
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
    }
    fprintf(stderr, "could not start swtpm on a free port\n");
    return -1;
}

static int
stop_swtpm(void **state)
{
    (void)state;
    if (swtpm_pid > 0) {
        kill(swtpm_pid, SIGTERM);
        waitpid(swtpm_pid, NULL, 0);
        swtpm_pid = -1;
    }
    DIR *d = opendir(state_dir);
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            char path[512];
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) {
                continue; /* swtpm also leaves a ".lock" */
            }
            snprintf(path, sizeof(path), "%s/%s", state_dir, e->d_name);
            unlink(path);
        }
        closedir(d);
        rmdir(state_dir);
    }
    return 0;
}

/* ---- helpers -------------------------------------------------------------------------------- */

static enum clst_status
quote(const char *pcrs, const uint8_t *nonce, size_t nonce_size, enum clst_tee_tpm_ak_alg alg,
      struct clst_buf *out, EVP_PKEY **ak, struct clst_err *err)
{
    struct clst_tee_tpm_pcrs sel;
    struct clst_tee_tpm_request req;
    assert_int_equal(clst_tee_tpm_pcrs_parse(pcrs, &sel, NULL), CLST_OK);
    memset(&req, 0, sizeof(req));
    req.tcti = tcti;
    req.pcrs = &sel;
    req.nonce = nonce;
    req.nonce_size = nonce_size;
    req.ak_alg = alg;
    clst_buf_init(out, 1024 * 1024);
    memset(err, 0, sizeof(*err));
    return clst_tee_tpm_quote(&req, out, ak, err);
}

static enum clst_status
verify(const struct clst_buf *ev, EVP_PKEY *ak, const uint8_t *nonce, size_t nonce_size,
       json_t **claims, struct clst_err *err)
{
    struct clst_evidence_input in;
    memset(&in, 0, sizeof(in));
    in.evidence = ev->data;
    in.evidence_size = ev->size;
    in.tpm_ak = ak;
    in.report_data = nonce;
    in.report_data_size = nonce_size;
    in.at = TF_T_2024;
    memset(err, 0, sizeof(*err));
    json_t *c = NULL;
    enum clst_status rc = clst_evidence_verify(CLST_EVIDENCE_TPM, &in, &c, err);
    if (claims != NULL) {
        *claims = c;
    } else {
        json_decref(c);
    }
    return rc;
}

/* The number of transient objects loaded in the TPM. */
static uint32_t
transient_count(void)
{
    TSS2_TCTI_CONTEXT *t = NULL;
    ESYS_CONTEXT *e = NULL;
    TPMI_YES_NO more = 0;
    TPMS_CAPABILITY_DATA *cap = NULL;
    assert_int_equal(Tss2_TctiLdr_Initialize(tcti, &t), TSS2_RC_SUCCESS);
    assert_int_equal(Esys_Initialize(&e, t, NULL), TSS2_RC_SUCCESS);
    assert_int_equal(Esys_GetCapability(e, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
                                        TPM2_CAP_HANDLES, 0x80000000u /* TPM2_TRANSIENT_FIRST */,
                                        64, &more, &cap),
                     TSS2_RC_SUCCESS);
    uint32_t n = cap->data.handles.count;
    Esys_Free(cap);
    Esys_Finalize(&e);
    Tss2_TctiLdr_Finalize(&t);
    return n;
}

/* Extends PCR `pcr` with the given digests (one per bank), as firmware does for a log event. */
static void
extend(uint32_t pcr, const struct tf_log *l, const void *data, size_t size)
{
    TSS2_TCTI_CONTEXT *t = NULL;
    ESYS_CONTEXT *e = NULL;
    TPML_DIGEST_VALUES v;
    memset(&v, 0, sizeof(v));
    for (size_t i = 0; i < l->alg_count; i++) {
        v.digests[i].hashAlg = l->alg[i];
        assert_int_equal(clst_hash(tf_hash(l->alg[i]), data, size, (uint8_t *)&v.digests[i].digest),
                         CLST_OK);
    }
    v.count = (UINT32)l->alg_count;
    assert_int_equal(Tss2_TctiLdr_Initialize(tcti, &t), TSS2_RC_SUCCESS);
    assert_int_equal(Esys_Initialize(&e, t, NULL), TSS2_RC_SUCCESS);
    assert_int_equal(
        Esys_PCR_Extend(e, ESYS_TR_PCR0 + pcr, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &v),
        TSS2_RC_SUCCESS);
    Esys_Finalize(&e);
    Tss2_TctiLdr_Finalize(&t);
}

/* ---- tests ---------------------------------------------------------------------------------- */

static void
test_pcrs_parse(void **state)
{
    (void)state;
    struct clst_tee_tpm_pcrs s;
    struct clst_err err;
    assert_int_equal(clst_tee_tpm_pcrs_parse("sha256:0,1,2", &s, &err), CLST_OK);
    assert_int_equal(s.bank_count, 1);
    assert_int_equal(s.bank[0].alg, TPM_ALG_SHA256_ID);
    assert_int_equal(s.bank[0].mask, 0x7);
    assert_int_equal(clst_tee_tpm_pcrs_parse("sha1:7+sha384:23,0+sha512:all", &s, &err), CLST_OK);
    assert_int_equal(s.bank_count, 3);
    assert_int_equal(s.bank[0].mask, 0x80);
    assert_int_equal(s.bank[1].alg, TPM_ALG_SHA384_ID);
    assert_int_equal(s.bank[1].mask, 0x800001);
    assert_int_equal(s.bank[2].mask, 0xffffff);
    static const char *const bad[] = {
        "",          "sha256",     "sha256:",      "sha256:24", "sha256:1,,2",
        "sha256:1,", "sha256:1,1", "md5:0",        "sha256:0+", "sha256:0+sha256:1",
        "sha256:-1", "sha256:0x1", "sha256: 1",    "+sha256:0", "sha256:0001",
        "SHA256:0",  "sha256:0:1", "sha256:all,1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&err, 0, sizeof(err));
        if (clst_tee_tpm_pcrs_parse(bad[i], &s, &err) != CLST_E_MALFORMED) {
            fprintf(stderr, "accepted: '%s'\n", bad[i]);
            fail();
        }
        assert_true(err.msg[0] != '\0');
    }
    assert_int_equal(clst_tee_tpm_pcrs_parse(NULL, &s, &err), CLST_E_INVAL);
}

static void
test_quote_each_alg(void **state)
{
    (void)state;
    static const struct {
        enum clst_tee_tpm_ak_alg alg;
        const char *name;
    } algs[] = {{CLST_TEE_TPM_AK_RSASSA, "rsassa"},
                {CLST_TEE_TPM_AK_RSAPSS, "rsapss"},
                {CLST_TEE_TPM_AK_ECDSA, "ecdsa"}};
    uint8_t nonce[CLST_TEE_TPM_NONCE_MAX_SIZE];
    struct clst_err err;

    assert_int_equal(clst_random(nonce, sizeof(nonce)), CLST_OK);
    for (size_t i = 0; i < 3; i++) {
        struct clst_buf ev, again;
        EVP_PKEY *ak = NULL, *ak2 = NULL;
        json_t *claims = NULL;
        assert_int_equal(
            quote("sha256:0,1,2,3+sha1:0", nonce, sizeof(nonce), algs[i].alg, &ev, &ak, &err),
            CLST_OK);
        assert_non_null(ak);
        /* SHA-1 bank: only with the opt-in. */
        assert_int_equal(verify(&ev, ak, nonce, sizeof(nonce), NULL, &err), CLST_E_VERIFY);
        struct clst_evidence_input in;
        memset(&in, 0, sizeof(in));
        in.evidence = ev.data;
        in.evidence_size = ev.size;
        in.tpm_ak = ak;
        in.tpm_allow_sha1 = true;
        in.report_data = nonce;
        in.report_data_size = sizeof(nonce);
        assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_TPM, &in, &claims, &err), CLST_OK);
        assert_string_equal(json_string_value(json_object_get(claims, "x-cloister-tpm-sig-alg")),
                            algs[i].name);
        assert_non_null(json_object_get(
            json_object_get(json_object_get(claims, "x-cloister-tpm-pcrs"), "sha1"), "0"));
        json_decref(claims);
        /* The wrong nonce. */
        nonce[0] ^= 1;
        assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_TPM, &in, &claims, &err),
                         CLST_E_VERIFY);
        nonce[0] ^= 1;
        /* The same AK on the next call. */
        assert_int_equal(quote("sha256:0", NULL, 0, algs[i].alg, &again, &ak2, &err), CLST_OK);
        assert_true(clst_pkey_public_equal(ak, ak2));
        assert_int_equal(verify(&again, ak, (const uint8_t *)"", 0, NULL, &err), CLST_OK);
        EVP_PKEY_free(ak2);
        clst_buf_cleanup(&again);
        EVP_PKEY_free(ak);
        clst_buf_cleanup(&ev);
    }
    /* Nothing left loaded. */
    assert_int_equal(transient_count(), 0);
}

static void
test_hierarchies_differ(void **state)
{
    (void)state;
    struct clst_tee_tpm_pcrs sel;
    struct clst_tee_tpm_request req;
    struct clst_buf a, b;
    EVP_PKEY *ka = NULL, *kb = NULL;
    struct clst_err err;
    assert_int_equal(clst_tee_tpm_pcrs_parse("sha256:0", &sel, NULL), CLST_OK);
    memset(&req, 0, sizeof(req));
    req.tcti = tcti;
    req.pcrs = &sel;
    req.ak_alg = CLST_TEE_TPM_AK_ECDSA;
    clst_buf_init(&a, 1 << 20);
    clst_buf_init(&b, 1 << 20);
    assert_int_equal(clst_tee_tpm_quote(&req, &a, &ka, &err), CLST_OK);
    req.hierarchy = CLST_TEE_TPM_OWNER;
    assert_int_equal(clst_tee_tpm_quote(&req, &b, &kb, &err), CLST_OK);
    assert_false(clst_pkey_public_equal(ka, kb));
    json_t *claims = NULL;
    assert_int_equal(verify(&a, ka, (const uint8_t *)"", 0, &claims, &err), CLST_OK);
    assert_string_equal(json_string_value(json_object_get(claims, "x-cloister-tpm-ak-hierarchy")),
                        "endorsement");
    json_decref(claims);
    assert_int_equal(verify(&b, kb, (const uint8_t *)"", 0, &claims, &err), CLST_OK);
    assert_string_equal(json_string_value(json_object_get(claims, "x-cloister-tpm-ak-hierarchy")),
                        "owner");
    json_decref(claims);
    assert_int_equal(verify(&b, ka, (const uint8_t *)"", 0, NULL, &err), CLST_E_VERIFY);
    EVP_PKEY_free(ka);
    EVP_PKEY_free(kb);
    clst_buf_cleanup(&a);
    clst_buf_cleanup(&b);
}

/* The firmware's part played here: extend PCRs 8 and 9 with the events of a log, then collect
 * with that log; the verifier replays it to the TPM's values. */
static void
test_event_log_round_trip(void **state)
{
    (void)state;
    static const uint16_t algs[] = {TPM_ALG_SHA1_ID, TPM_ALG_SHA256_ID, TPM_ALG_SHA384_ID};
    struct tf_log log;
    struct clst_tee_tpm_pcrs sel;
    struct clst_tee_tpm_request req;
    struct clst_buf ev;
    EVP_PKEY *ak = NULL;
    json_t *claims = NULL;
    struct clst_err err;
    static const char *const events[] = {"grub", "kernel", "initrd", "cmdline"};

    tf_log_init(&log, algs, 3);
    tf_log_event(&log, 8, TPM_EV_NO_ACTION, "not measured", 12);
    for (size_t i = 0; i < 4; i++) {
        uint32_t pcr = i < 2 ? 8 : 9;
        tf_log_event(&log, pcr, 0x0d, events[i], strlen(events[i]));
        extend(pcr, &log, events[i], strlen(events[i]));
    }
    assert_int_equal(clst_tee_tpm_pcrs_parse("sha256:7,8,9+sha384:8", &sel, NULL), CLST_OK);
    memset(&req, 0, sizeof(req));
    req.tcti = tcti;
    req.pcrs = &sel;
    req.event_log = log.buf.data;
    req.event_log_size = log.buf.size;
    clst_buf_init(&ev, 1 << 20);
    assert_int_equal(clst_tee_tpm_quote(&req, &ev, &ak, &err), CLST_OK);
    assert_int_equal(verify(&ev, ak, (const uint8_t *)"", 0, &claims, &err), CLST_OK);
    assert_true(json_is_true(json_object_get(claims, "x-cloister-tpm-eventlog-verified")));
    json_t *replayed = json_object_get(claims, "x-cloister-tpm-eventlog-pcrs");
    assert_int_equal(json_array_size(json_object_get(replayed, "sha256")), 2);
    assert_int_equal(json_integer_value(json_array_get(json_object_get(replayed, "sha256"), 0)), 8);
    assert_int_equal(json_array_size(json_object_get(replayed, "sha384")), 1);
    json_decref(claims);
    clst_buf_cleanup(&ev);

    /* A log that is not this TPM's: one event changed. */
    log.buf.data[log.buf.size - 1] ^= 0x01; /* the data of the last event ... */
    static struct tf_log_event walked[16];
    size_t n = tf_log_walk(log.buf.data, log.buf.size, walked, 16);
    log.buf.data[walked[n - 1].digest_offset[1]] ^= 0x01; /* ... and its sha256 digest */
    req.event_log = log.buf.data;
    clst_buf_init(&ev, 1 << 20);
    assert_int_equal(clst_tee_tpm_quote(&req, &ev, NULL, &err), CLST_OK);
    assert_int_equal(verify(&ev, ak, (const uint8_t *)"", 0, NULL, &err), CLST_E_VERIFY);
    assert_non_null(strstr(err.msg, "sha256:9"));
    clst_buf_cleanup(&ev);
    EVP_PKEY_free(ak);
    clst_buf_cleanup(&log.buf);
    assert_int_equal(transient_count(), 0);
}

static void
test_ak_certificate(void **state)
{
    (void)state;
    struct clst_tee_tpm_pcrs sel;
    struct clst_tee_tpm_request req;
    struct clst_buf ev;
    EVP_PKEY *ak = NULL, *ca_key = NULL;
    struct clst_err err;
    json_t *claims = NULL;

    /* First the AK, then a CA made here certifies it. */
    assert_int_equal(quote("sha256:0", NULL, 0, CLST_TEE_TPM_AK_RSASSA, &ev, &ak, &err), CLST_OK);
    clst_buf_cleanup(&ev);
    assert_int_equal(clst_ec_generate(CLST_CURVE_P256, &ca_key), CLST_OK);
    X509 *ca = X509_new(), *cert = X509_new();
    X509_NAME *ca_name = X509_NAME_new(), *ak_name = X509_NAME_new();
    X509_NAME_add_entry_by_txt(ca_name, "CN", MBSTRING_ASC, (const unsigned char *)"test CA", -1,
                               -1, 0);
    X509_NAME_add_entry_by_txt(ak_name, "CN", MBSTRING_ASC, (const unsigned char *)"AK", -1, -1, 0);
    X509 *issue[2] = {ca, cert};
    for (int i = 0; i < 2; i++) {
        X509_set_version(issue[i], 2);
        ASN1_INTEGER_set(X509_get_serialNumber(issue[i]), i + 1);
        X509_set_issuer_name(issue[i], ca_name);
        X509_set_subject_name(issue[i], i == 0 ? ca_name : ak_name);
        X509_time_adj_ex(X509_getm_notBefore(issue[i]), 0, 0, &(time_t){TF_T_2024 - 86400});
        X509_time_adj_ex(X509_getm_notAfter(issue[i]), 0, 0, &(time_t){TF_T_2024 + 86400});
        X509_set_pubkey(issue[i], i == 0 ? ca_key : ak);
        if (i == 0) {
            X509_EXTENSION *bc =
                X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
            X509_add_ext(issue[i], bc, -1);
            X509_EXTENSION_free(bc);
        }
        assert_true(X509_sign(issue[i], ca_key, EVP_sha256()) > 0);
    }
    assert_int_equal(clst_tee_tpm_pcrs_parse("sha256:0,1", &sel, NULL), CLST_OK);
    memset(&req, 0, sizeof(req));
    req.tcti = tcti;
    req.pcrs = &sel;
    req.ak_cert = cert;
    clst_buf_init(&ev, 1 << 20);
    assert_int_equal(clst_tee_tpm_quote(&req, &ev, NULL, &err), CLST_OK);
    STACK_OF(X509) *roots = sk_X509_new_null();
    X509_up_ref(ca);
    sk_X509_push(roots, ca);
    struct clst_evidence_input in;
    memset(&in, 0, sizeof(in));
    in.evidence = ev.data;
    in.evidence_size = ev.size;
    in.roots = roots;
    in.at = TF_T_2024;
    assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_TPM, &in, &claims, &err), CLST_OK);
    assert_true(json_is_true(json_object_get(claims, "aikValidated")));
    json_decref(claims);
    in.at = TF_T_2024 + 2 * 86400; /* the certificate expired */
    assert_int_equal(clst_evidence_verify(CLST_EVIDENCE_TPM, &in, &claims, &err), CLST_E_VERIFY);
    clst_buf_cleanup(&ev);
    /* A certificate for another key (the CA's) is refused before anything is written. */
    req.ak_cert = ca;
    clst_buf_init(&ev, 1 << 20);
    assert_int_equal(clst_tee_tpm_quote(&req, &ev, NULL, &err), CLST_E_VERIFY);
    assert_int_equal(ev.size, 0);
    clst_buf_cleanup(&ev);
    sk_X509_pop_free(roots, X509_free);
    X509_NAME_free(ca_name);
    X509_NAME_free(ak_name);
    X509_free(ca);
    X509_free(cert);
    EVP_PKEY_free(ca_key);
    EVP_PKEY_free(ak);
    assert_int_equal(transient_count(), 0);
}

static void
test_errors(void **state)
{
    (void)state;
    struct clst_tee_tpm_pcrs sel;
    struct clst_tee_tpm_request req;
    struct clst_buf out;
    struct clst_err err;
    uint8_t nonce[CLST_TEE_TPM_NONCE_MAX_SIZE + 1] = {0};

    assert_int_equal(clst_tee_tpm_pcrs_parse("sha256:0", &sel, NULL), CLST_OK);
    clst_buf_init(&out, 1 << 20);
    memset(&req, 0, sizeof(req));
    req.tcti = tcti;
    assert_int_equal(clst_tee_tpm_quote(&req, &out, NULL, &err), CLST_E_INVAL); /* no PCRs */
    req.pcrs = &sel;
    req.nonce = nonce;
    req.nonce_size = sizeof(nonce);
    assert_int_equal(clst_tee_tpm_quote(&req, &out, NULL, &err), CLST_E_INVAL);
    req.nonce_size = 0;
    req.ak_alg = (enum clst_tee_tpm_ak_alg)9;
    assert_int_equal(clst_tee_tpm_quote(&req, &out, NULL, &err), CLST_E_INVAL);
    req.ak_alg = CLST_TEE_TPM_AK_RSASSA;
    struct clst_tee_tpm_pcrs twice = sel;
    twice.bank_count = 2;
    twice.bank[1] = sel.bank[0];
    req.pcrs = &twice;
    assert_int_equal(clst_tee_tpm_quote(&req, &out, NULL, &err), CLST_E_INVAL);
    req.pcrs = &sel;
    req.event_log_size = 5; /* with no event log */
    assert_int_equal(clst_tee_tpm_quote(&req, &out, NULL, &err), CLST_E_INVAL);
    req.event_log_size = 0;
    assert_int_equal(clst_tee_tpm_quote(&req, NULL, NULL, &err), CLST_E_INVAL);
    /* No TPM behind the TCTI (the control port is not a TPM command port either). */
    char none[96];
    snprintf(none, sizeof(none), "swtpm:host=127.0.0.1,port=%d", 1);
    req.tcti = none;
    assert_int_equal(clst_tee_tpm_quote(&req, &out, NULL, &err), CLST_E_IO);
    assert_non_null(strstr(err.msg, "tpm"));
    req.tcti = "nosuchtcti:whatever";
    assert_int_equal(clst_tee_tpm_quote(&req, &out, NULL, &err), CLST_E_IO);
    assert_int_equal(out.size, 0);
    clst_buf_cleanup(&out);
    /* An output buffer too small for the evidence. */
    req.tcti = tcti;
    clst_buf_init(&out, 100);
    assert_int_equal(clst_tee_tpm_quote(&req, &out, NULL, &err), CLST_E_LIMIT);
    assert_int_equal(out.size, 0);
    clst_buf_cleanup(&out);
    assert_int_equal(transient_count(), 0);
}

int
main(int argc, char **argv)
{
    setenv("TSS2_LOG", "all+none", 0);
    if (argc > 1) {
        cmocka_set_test_filter(argv[1]);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pcrs_parse),         cmocka_unit_test(test_quote_each_alg),
        cmocka_unit_test(test_hierarchies_differ), cmocka_unit_test(test_event_log_round_trip),
        cmocka_unit_test(test_ak_certificate),     cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, start_swtpm, stop_swtpm);
}
