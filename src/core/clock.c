/* The injectable clock: verification code is given a clock, never reads the wall clock. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <cloister/core.h>

static int64_t
system_now(const struct clst_clock *clock)
{
    (void)clock;
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        return 0;
    }
    return (int64_t)ts.tv_sec;
}

static int64_t
fixed_now(const struct clst_clock *clock)
{
    return clock->fixed;
}

static const struct clst_clock system_clock = {system_now, 0};

const struct clst_clock *
clst_clock_system(void)
{
    return &system_clock;
}

void
clst_clock_fixed_init(struct clst_clock *clock, int64_t t)
{
    clock->now = fixed_now;
    clock->fixed = t;
}

uint64_t
clst_monotonic_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0) {
        return 0;
    }
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t
days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int64_t
clst_time_from_civil(int64_t year, int64_t month, int64_t day, int64_t hour, int64_t minute,
                     int64_t second)
{
    return days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second;
}

static void
civil_from_days(int64_t z, int64_t *y, int64_t *m, int64_t *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = yoe + era * 400 + (*m <= 2);
}

/* Reads exactly n digits. */
static bool
digits(const char **p, int n, int64_t *out)
{
    int64_t v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9') {
            return false;
        }
        v = v * 10 + (c - '0');
    }
    *p += n;
    *out = v;
    return true;
}

static bool
expect(const char **p, char c)
{
    if (**p != c) {
        return false;
    }
    (*p)++;
    return true;
}

enum clst_status
clst_time_parse(const char *s, int64_t *out, struct clst_err *err)
{
    if (s == NULL || s[0] == '\0') {
        return clst_err_set(err, CLST_E_MALFORMED,
                            "empty time; use 2024-05-01T12:00:00Z or a Unix time");
    }
    if (strchr(s, 'T') == NULL && strchr(s, '-') == NULL) {
        return clst_parse_i64(s, 0, INT64_C(253402300799), out, err);
    }
    const char *p = s;
    int64_t y, mo, d, h, mi, sec;
    if (!digits(&p, 4, &y) || !expect(&p, '-') || !digits(&p, 2, &mo) || !expect(&p, '-') ||
        !digits(&p, 2, &d) || !(expect(&p, 'T') || expect(&p, 't')) || !digits(&p, 2, &h) ||
        !expect(&p, ':') || !digits(&p, 2, &mi) || !expect(&p, ':') || !digits(&p, 2, &sec)) {
        return clst_err_set(err, CLST_E_MALFORMED, "'%s' is not a time like 2024-05-01T12:00:00Z",
                            s);
    }
    if (*p == '.') { /* fractional seconds are accepted and dropped */
        p++;
        if (*p < '0' || *p > '9') {
            return clst_err_set(err, CLST_E_MALFORMED, "'%s': bad fractional seconds", s);
        }
        while (*p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (!((p[0] == 'Z' || p[0] == 'z') && p[1] == '\0')) {
        return clst_err_set(err, CLST_E_MALFORMED, "'%s': the time must be UTC and end in 'Z'", s);
    }
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap) ||
        h > 23 || mi > 59 || sec > 60) {
        return clst_err_set(err, CLST_E_MALFORMED, "'%s' is not a valid date and time", s);
    }
    if (sec == 60) {
        sec = 59; /* a leap second is clamped; Unix time has none */
    }
    *out = clst_time_from_civil(y, mo, d, h, mi, sec);
    return CLST_OK;
}

enum clst_status
clst_time_format(int64_t t, char *out, size_t out_cap)
{
    if (t < INT64_C(-62135596800) || t > INT64_C(253402300799)) {
        return CLST_E_LIMIT;
    }
    int64_t days = t / 86400, rem = t % 86400;
    if (rem < 0) {
        rem += 86400;
        days -= 1;
    }
    int64_t y, m, d;
    civil_from_days(days, &y, &m, &d);
    int n = snprintf(out, out_cap,
                     "%04" PRId64 "-%02" PRId64 "-%02" PRId64 "T%02" PRId64 ":%02" PRId64
                     ":%02" PRId64 "Z",
                     y, m, d, rem / 3600, rem % 3600 / 60, rem % 60);
    if (n < 0 || (size_t)n >= out_cap) {
        return CLST_E_LIMIT;
    }
    return CLST_OK;
}
