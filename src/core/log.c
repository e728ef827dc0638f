/* Leveled logging to stderr, one line per call. */
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include <cloister/core.h>

/* The level is process-wide configuration set once at start-up; atomic so that server threads
 * read it without a data race. */
static _Atomic int log_level = CLST_LOG_WARN;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void
clst_log_set_level(enum clst_log_level level)
{
    atomic_store(&log_level, (int)level);
}

enum clst_log_level
clst_log_get_level(void)
{
    return (enum clst_log_level)atomic_load(&log_level);
}

enum clst_status
clst_log_level_parse(const char *s, enum clst_log_level *out)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum clst_log_level)i;
            return CLST_OK;
        }
    }
    return CLST_E_INVAL;
}

void
clst_log(enum clst_log_level level, const char *fmt, ...)
{
    if ((int)level > atomic_load(&log_level) || (unsigned)level > CLST_LOG_DEBUG) {
        return;
    }
    /* Format into one buffer and write it with one call so lines from threads don't interleave. */
    char line[1024];
    int n = snprintf(line, sizeof(line), "cloister[%s]: ", level_names[level]);
    if (n < 0) {
        return;
    }
    size_t used = (size_t)n;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + used, sizeof(line) - used, fmt, ap);
    va_end(ap);
    if (m < 0) {
        return;
    }
    used += (size_t)m;
    if (used >= sizeof(line) - 1) {
        used = sizeof(line) - 2;
    }
    line[used] = '\n';
    line[used + 1] = '\0';
    fputs(line, stderr);
}
