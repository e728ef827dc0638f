/* The client configuration helpers, apart from the transport: programs that only read the
 * settings (the lightweight cloister binary deciding whether to hand a command over) must not
 * pull libcurl in with them. */
#include <stdlib.h>
#include <string.h>

#include <cloister/client.h>

void
clst_client_config_init(struct clst_client_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
}

void
clst_client_config_from_env(struct clst_client_config *cfg)
{
    const char *v;
    if (cfg->url == NULL && (v = getenv(CLST_CLIENT_ENV_URL)) != NULL && v[0] != '\0') {
        cfg->url = v;
    }
    if (cfg->token == NULL && (v = getenv(CLST_CLIENT_ENV_TOKEN)) != NULL && v[0] != '\0') {
        cfg->token = v;
    }
    if (cfg->ca_file == NULL && (v = getenv(CLST_CLIENT_ENV_CA)) != NULL && v[0] != '\0') {
        cfg->ca_file = v;
    }
}
