/* The vault connection options shared by commands that talk to `cloister serve` as clients. */
#define _POSIX_C_SOURCE 200809L /* O_CLOEXEC, O_NOFOLLOW */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"

#define TOKEN_FILE_MAX (CLST_CLIENT_TOKEN_MAX + 2)

void
cli_vault_opts_init(struct cli_vault_opts *o)
{
    memset(o, 0, sizeof(*o));
    clst_client_config_init(&o->cfg);
    clst_buf_init_secret(&o->token_buf, TOKEN_FILE_MAX);
}

static int
read_token_file(const char *cmd, const char *path, struct clst_buf *out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        return cli_failf(cmd, "cannot read the token file '%s': %s", path, strerror(errno));
    }
    uint8_t chunk[512];
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            close(fd);
            return cli_failf(cmd, "reading the token file '%s': %s", path, strerror(errno));
        }
        if (n == 0) {
            break;
        }
        if (clst_buf_append(out, chunk, (size_t)n) != CLST_OK) {
            close(fd);
            clst_wipe(chunk, sizeof(chunk));
            return cli_failf(cmd, "the token file '%s' is larger than %d bytes", path,
                             CLST_CLIENT_TOKEN_MAX);
        }
    }
    close(fd);
    clst_wipe(chunk, sizeof(chunk));
    while (out->size > 0 &&
           (out->data[out->size - 1] == '\n' || out->data[out->size - 1] == '\r')) {
        out->size--;
    }
    if (out->size == 0 || clst_buf_terminate(out) != CLST_OK ||
        memchr(out->data, '\0', out->size) != NULL) {
        return cli_failf(cmd, "the token file '%s' holds no usable token", path);
    }
    return CLI_EXIT_OK;
}

int
cli_vault_opts_finish(const char *cmd, struct cli_vault_opts *o)
{
    if (o->token_file != NULL) {
        if (o->cfg.token != NULL) {
            return cli_usage_error(cmd, "give --token or --token-file, not both");
        }
        int rc = read_token_file(cmd, o->token_file, &o->token_buf);
        if (rc != CLI_EXIT_OK) {
            return rc;
        }
        o->cfg.token = (const char *)o->token_buf.data;
    }
    clst_client_config_from_env(&o->cfg);
    if (o->cfg.url == NULL) {
        return cli_usage_error(cmd, "no vault: pass --url https://HOST:PORT or set CLOISTER_URL");
    }
    if (o->cfg.token == NULL) {
        return cli_usage_error(cmd, "no token: pass --token-file FILE or set CLOISTER_TOKEN");
    }
    return CLI_EXIT_OK;
}

void
cli_vault_opts_cleanup(struct cli_vault_opts *o)
{
    o->cfg.token = NULL;
    clst_buf_cleanup(&o->token_buf);
}
