/* Status codes and the error object. */
#include <stdio.h>
#include <string.h>

#include <cloister/core.h>

const char *
clst_status_str(enum clst_status status)
{
    switch (status) {
    case CLST_OK:
        return "ok";
    case CLST_E_INVAL:
        return "invalid argument";
    case CLST_E_MALFORMED:
        return "malformed input";
    case CLST_E_VERIFY:
        return "verification failed";
    case CLST_E_DENIED:
        return "permission denied";
    case CLST_E_CRYPTO:
        return "cryptographic library error";
    case CLST_E_NOMEM:
        return "out of memory";
    case CLST_E_IO:
        return "input/output error";
    case CLST_E_LIMIT:
        return "limit exceeded";
    case CLST_E_NOTFOUND:
        return "not found";
    case CLST_E_CONFLICT:
        return "conflict";
    case CLST_E_INTERNAL:
        return "internal error";
    }
    return "unknown status";
}

/* Marks a truncated message so a reader knows text is missing. */
static void
mark_truncated(char *msg, size_t cap)
{
    if (cap >= 4) {
        memcpy(msg + cap - 4, "...", 4);
    }
}

enum clst_status
clst_err_set(struct clst_err *err, enum clst_status status, const char *fmt, ...)
{
    if (err == NULL) {
        return status;
    }
    err->status = status;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    if (n < 0) {
        snprintf(err->msg, sizeof(err->msg), "%s", clst_status_str(status));
    } else if ((size_t)n >= sizeof(err->msg)) {
        mark_truncated(err->msg, sizeof(err->msg));
    }
    return status;
}

enum clst_status
clst_err_prefix(struct clst_err *err, const char *fmt, ...)
{
    if (err == NULL) {
        return CLST_E_INTERNAL;
    }
    char prefix[CLST_ERR_MSG_SIZE];
    char old[CLST_ERR_MSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    if (n < 0) {
        return err->status;
    }
    memcpy(old, err->msg, sizeof(old));
    old[sizeof(old) - 1] = '\0';
    if (old[0] == '\0') {
        snprintf(old, sizeof(old), "%s", clst_status_str(err->status));
    }
    n = snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
    if (n >= 0 && (size_t)n >= sizeof(err->msg)) {
        mark_truncated(err->msg, sizeof(err->msg));
    }
    return err->status;
}

void
clst_err_clear(struct clst_err *err)
{
    if (err != NULL) {
        err->status = CLST_OK;
        err->msg[0] = '\0';
    }
}
