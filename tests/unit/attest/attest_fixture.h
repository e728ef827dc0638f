/*
 * Shared by the attest unit tests: a temporary directory with a sim platform, evidence made by
 * it, and an engine over a fresh attest.db with a fixed clock the test can move.
 */
#ifndef ATTEST_FIXTURE_H
#define ATTEST_FIXTURE_H

#define _POSIX_C_SOURCE 200809L
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <cloister/attest.h>
#include <cloister/evidence.h>
#include <cloister/jose.h>

#include "attest/attest_int.h"

#define FX_T0     1790000000LL /* 2026-09-21 */
#define FX_ISSUER "https://attest.test:8443"

static const uint8_t fx_master_key[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                          17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30,
                                          31, 32};

struct fx {
    char dir[256];
    char plat_dir[300];
    char db[300];
    struct clst_sim_platform *plat;
    STACK_OF(X509) *roots;
    struct clst_clock clock;
    struct clst_attest *a;
};

static inline void
fx_rm_rf(const char *dir)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
}

/* A sim platform, a fixed clock at FX_T0; no engine yet. */
static inline void
fx_setup_platform(struct fx *f)
{
    struct clst_err err = {0};
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/attest-unit-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->plat_dir, sizeof(f->plat_dir), "%s/plat", f->dir);
    snprintf(f->db, sizeof(f->db), "%s/attest.db", f->dir);
    assert_int_equal(clst_evidence_sim_platform_create(f->plat_dir, FX_T0, false, &err), CLST_OK);
    assert_int_equal(clst_evidence_sim_platform_load(f->plat_dir, &f->plat, &err), CLST_OK);
    f->roots = sk_X509_new_null();
    X509 *root = clst_evidence_sim_platform_root(f->plat);
    assert_int_equal(X509_up_ref(root), 1);
    assert_true(sk_X509_push(f->roots, root) > 0);
    clst_clock_fixed_init(&f->clock, FX_T0);
}

static inline enum clst_status
fx_engine_new(struct fx *f, bool trust_sim, int64_t lifetime, struct clst_attest **out,
              struct clst_err *err)
{
    struct clst_attest_config cfg;
    clst_attest_config_init(&cfg);
    cfg.db_path = f->db;
    cfg.master_key = fx_master_key;
    cfg.master_key_size = sizeof(fx_master_key);
    cfg.issuer = FX_ISSUER;
    cfg.sim_roots = trust_sim ? f->roots : NULL;
    cfg.token_lifetime = lifetime;
    cfg.clock = &f->clock;
    return clst_attest_new(&cfg, out, err);
}

static inline void
fx_setup(struct fx *f)
{
    struct clst_err err = {0};
    fx_setup_platform(f);
    enum clst_status st = fx_engine_new(f, true, 0, &f->a, &err);
    if (st != CLST_OK) {
        fprintf(stderr, "engine: %s\n", err.msg);
    }
    assert_int_equal(st, CLST_OK);
}

static inline void
fx_teardown(struct fx *f)
{
    clst_attest_free(f->a);
    clst_evidence_sim_platform_free(f->plat);
    if (f->roots != NULL) {
        sk_X509_pop_free(f->roots, X509_free);
    }
    fx_rm_rf(f->dir);
    memset(f, 0, sizeof(*f));
}

static inline void
fx_identity(struct clst_sim_identity *id, uint8_t fill, uint16_t svn, bool debug)
{
    memset(id, 0, sizeof(*id));
    memset(id->mrenclave, fill, sizeof(id->mrenclave));
    memset(id->mrsigner, 0x5a, sizeof(id->mrsigner));
    id->product_id = 7;
    id->svn = svn;
    id->debug = debug;
}

/* Sim evidence binding `runtime` (SHA-256 in the report data); appended to out (initialized
 * here). */
static inline void
fx_evidence(struct fx *f, const struct clst_sim_identity *id, const void *runtime,
            size_t runtime_size, struct clst_buf *out)
{
    struct clst_err err = {0};
    uint8_t rd[CLST_EVIDENCE_REPORT_DATA_SIZE];
    assert_int_equal(clst_evidence_report_data_bind(runtime, runtime_size, rd), CLST_OK);
    clst_buf_init(out, CLST_SIM_EVIDENCE_MAX_SIZE);
    assert_int_equal(clst_evidence_sim_report_create(f->plat, id, rd, out, &err), CLST_OK);
}

/* A parsed request for SimEnclave with evidence and runtime data given directly. */
static inline void
fx_request(struct clst_attest_request *r, const struct clst_buf *evidence,
           enum clst_attest_data_type rtype, const char *runtime, const char *nonce)
{
    const struct clst_attest_type *t = NULL;
    memset(r, 0, sizeof(*r));
    assert_int_equal(clst_attest_type_find("SimEnclave", &t, NULL), CLST_OK);
    r->type = t;
    clst_buf_init(&r->evidence, 1u << 20);
    assert_int_equal(clst_buf_append(&r->evidence, evidence->data, evidence->size), CLST_OK);
    r->runtime_type = rtype;
    clst_buf_init(&r->runtime_data, 1u << 20);
    if (runtime != NULL) {
        assert_int_equal(clst_buf_append(&r->runtime_data, runtime, strlen(runtime)), CLST_OK);
        if (rtype == CLST_ATTEST_DATA_JSON) {
            r->runtime_json = json_loads(runtime, 0, NULL);
            assert_non_null(r->runtime_json);
        }
    }
    if (nonce != NULL) {
        r->nonce = strdup(nonce);
    }
}

/* The engine's JWKS as a parsed key set. */
static inline struct clst_jwks *
fx_jwks(struct clst_attest *a)
{
    json_t *j = NULL;
    struct clst_jwks *set = NULL;
    struct clst_err err = {0};
    assert_int_equal(clst_attest_jwks(a, &j, &err), CLST_OK);
    assert_int_equal(clst_jwks_from_json(j, &set, &err), CLST_OK);
    json_decref(j);
    return set;
}


/* ---- an in-process server with the attestation routes and a test authentication hook ------- */

#ifdef FX_WITH_SERVER
#include <cloister/server.h>
#include <cloister/vault_store.h>

struct fx_server {
    struct clst_server_datadir *dir;
    struct clst_server *server;
    char url[64];
    char ca[320];
};

/* "Bearer admin": Administrator at "/"; "Bearer user": Crypto User at "/"; "Bearer scoped":
 * Administrator at "/keys/k"; anything else: 401. */
static enum clst_status
fx_auth(void *ctx, const struct clst_http_request *req, const char *authorization,
        void **out_principal, struct clst_err *err)
{
    (void)ctx;
    (void)req;
    const char *role = NULL, *scope = "/", *id = NULL;
    if (authorization != NULL && strcmp(authorization, "Bearer admin") == 0) {
        role = "Administrator";
        id = "admin";
    } else if (authorization != NULL && strcmp(authorization, "Bearer user") == 0) {
        role = "Crypto User";
        id = "user";
    } else if (authorization != NULL && strcmp(authorization, "Bearer scoped") == 0) {
        role = "Administrator";
        scope = "/keys/k";
        id = "scoped";
    } else {
        return clst_err_set(err, CLST_E_VERIFY, "test: unknown token");
    }
    struct clst_vault_principal *p = calloc(1, sizeof(*p));
    p->roles = calloc(1, sizeof(*p->roles));
    p->role_count = 1;
    p->enabled = true;
    snprintf(p->id, sizeof(p->id), "%s", id);
    snprintf(p->roles[0].role, sizeof(p->roles[0].role), "%s", role);
    snprintf(p->roles[0].scope, sizeof(p->roles[0].scope), "%s", scope);
    *out_principal = p;
    return CLST_OK;
}

static void
fx_auth_free(void *ctx, void *principal)
{
    (void)ctx;
    struct clst_vault_principal *p = principal;
    free(p->roles);
    free(p);
}

static inline void
fx_server_start(struct fx *f, struct fx_server *s)
{
    struct clst_err err = {0};
    char path[300];
    struct clst_server_config cfg;
    memset(s, 0, sizeof(*s));
    snprintf(path, sizeof(path), "%s/data", f->dir);
    assert_int_equal(clst_server_datadir_open(path, "127.0.0.1", NULL, &s->dir, &err), CLST_OK);
    clst_server_config_init(&cfg);
    cfg.port = 0;
    cfg.thread_count = 2;
    cfg.tls_cert_pem = s->dir->server_cert_pem;
    cfg.tls_key_pem = (const char *)s->dir->server_key_pem->ptr;
    assert_int_equal(clst_server_new(&cfg, &s->server, &err), CLST_OK);
    struct clst_server_auth auth = {fx_auth, fx_auth_free, NULL};
    assert_int_equal(clst_server_auth_set(s->server, &auth, &err), CLST_OK);
    assert_int_equal(clst_attest_register(f->a, s->server, &err), CLST_OK);
    assert_int_equal(clst_attest_register_admin(f->a, s->server, &err), CLST_OK);
    assert_int_equal(clst_server_start(s->server, &err), CLST_OK);
    snprintf(s->url, sizeof(s->url), "https://127.0.0.1:%u", (unsigned)clst_server_port(s->server));
    snprintf(s->ca, sizeof(s->ca), "%s/ca.pem", path);
}

static inline void
fx_server_stop(struct fx_server *s)
{
    clst_server_free(s->server);
    clst_server_datadir_free(s->dir);
    memset(s, 0, sizeof(*s));
}
#endif /* FX_WITH_SERVER */

#endif /* ATTEST_FIXTURE_H */
