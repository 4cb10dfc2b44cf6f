/* The requests' destructors (requests.h). */
#include "airlockd/core/requests.h"

#include <stdlib.h>
#include <string.h>

void ald_create_req_free(struct ald_create_req *r)
{
    al_policy_free(&r->policy);
    json_decref(r->env);
    json_decref(r->metadata);
    json_decref(r->webhook);
    free(r->repo);
    free(r->base);
    free(r->branch);
    for (size_t i = 0; i < r->n_creds; i++) {
        free(r->creds[i].secret);
        free(r->creds[i].env);
        al_strlist_free(&r->creds[i].inject_hosts);
    }
    free(r->creds);
    memset(r, 0, sizeof(*r));
}

void ald_exec_req_free(struct ald_exec_req *r)
{
    if (r->argv)
        for (size_t i = 0; r->argv[i]; i++)
            free(r->argv[i]);
    free(r->argv);
    json_decref(r->argv_json);
    json_decref(r->env);
    free(r->cwd);
    free(r->stdin_data);
    memset(r, 0, sizeof(*r));
}
