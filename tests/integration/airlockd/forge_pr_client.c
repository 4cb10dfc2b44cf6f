/* Test program: calls ald_forge_open_pr (airlockd/adapters/forge.h) the
 * way a job does, with airlockd's configuration file (forge.hosts,
 * proxies.credential_store, proxies.master_key), so forge_test.py can drive
 * it against fake_github.py.
 *
 * usage: forge_pr_client CONFIG REPO_URL HEAD BASE TITLE [BODY]
 * prints {"url": ...} and exits 0, or {"kind": N, "code", "field",
 * "message"} and exits 2; 1 on a bad configuration. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "airlockd/adapters/forge.h"
#include "airlockd/core/config.h"
#include "airlockd/core/daemon.h"

#include "airlock/error.h"

int main(int argc, char **argv)
{
    if (argc < 6 || argc > 7) {
        fprintf(stderr, "usage: %s CONFIG REPO_URL HEAD BASE TITLE [BODY]\n", argv[0]);
        return 1;
    }
    struct ald_config cfg;
    if (ald_config_init(&cfg) < 0 || ald_config_load_file(&cfg, argv[1]) < 0) {
        fprintf(stderr, "%s\n", al_error_last());
        return 1;
    }
    struct ald d;
    memset(&d, 0, sizeof(d));
    d.cfg = &cfg;
    struct ald_fault f;
    memset(&f, 0, sizeof(f));
    char *url = NULL;
    int err = ald_forge_open_pr(&d, argv[2], argv[3], argv[4], argv[5], argc > 6 ? argv[6] : NULL,
                                &url, &f);
    json_t *out = err == 0
                      ? json_pack("{s:s}", "url", url)
                      : json_pack("{s:i, s:s, s:s, s:s}", "kind", (int)f.kind, "code",
                                  f.code ? f.code : "", "field", f.field, "message", f.message);
    char *txt = out ? json_dumps(out, JSON_COMPACT) : NULL;
    printf("%s\n", txt ? txt : "{}");
    free(txt);
    json_decref(out);
    free(url);
    ald_config_free(&cfg);
    return err == 0 ? 0 : 2;
}
