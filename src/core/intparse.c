/* Checked integer parsing: whole string, base 10, range-checked, never atoi. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include <cloister/core.h>

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

enum clst_status
clst_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, struct clst_err *err)
{
    if (s == NULL || !is_digit(s[0])) {
        return clst_err_set(err, CLST_E_MALFORMED, "'%s' is not a non-negative decimal integer",
                            s ? s : "(null)");
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0') {
        return clst_err_set(err, CLST_E_MALFORMED, "'%s' is not a non-negative decimal integer", s);
    }
    if (errno == ERANGE || v < min || v > max) {
        return clst_err_set(err, CLST_E_LIMIT, "%s is out of range (%" PRIu64 "..%" PRIu64 ")", s,
                            min, max);
    }
    *out = (uint64_t)v;
    return CLST_OK;
}

enum clst_status
clst_parse_i64(const char *s, int64_t min, int64_t max, int64_t *out, struct clst_err *err)
{
    if (s == NULL || !(is_digit(s[0]) || (s[0] == '-' && is_digit(s[1])))) {
        return clst_err_set(err, CLST_E_MALFORMED, "'%s' is not a decimal integer",
                            s ? s : "(null)");
    }
    errno = 0;
    char *end = NULL;
    long long v = strtoll(s, &end, 10);
    if (*end != '\0') {
        return clst_err_set(err, CLST_E_MALFORMED, "'%s' is not a decimal integer", s);
    }
    if (errno == ERANGE || v < min || v > max) {
        return clst_err_set(err, CLST_E_LIMIT, "%s is out of range (%" PRId64 "..%" PRId64 ")", s,
                            min, max);
    }
    *out = (int64_t)v;
    return CLST_OK;
}
