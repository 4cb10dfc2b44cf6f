/* Push inspection against a cached mirror of the upstream repository:
 * fast-forward checks and the secret leak guard. */
#ifndef GP_INSPECT_H
#define GP_INSPECT_H

#include <sys/types.h>

#include "airlock/gp_receive.h"
#include "airlock/strlist.h"

#define GP_SCAN_BLOB_MAX (8u << 20) /* larger blobs are not scanned */

struct gp_inspect {
    const char *cache_dir;   /* mirrors live in <cache_dir>/<host>/<owner>/<name>.git */
    const char *repo;        /* "host/owner/name" */
    const char *url;         /* upstream repository URL (…/name.git) */
    const char *auth_header; /* "Authorization: Basic …" with the real credential */
    int spool_fd;            /* the whole request body */
    off_t pack_offset;       /* where the pack starts in spool_fd */
    int has_pack;
    int check_ff;                     /* refuse non-fast-forward updates */
    int leak_guard;                   /* scan new blobs */
    const struct al_strlist *secrets; /* literal secrets to look for */
};

/* Call once at start-up (libgit2 init; `ca_file` may be NULL). */
int gp_inspect_global_init(const char *ca_file);

/* Inspects the push: for each command i that must be refused, reasons[i]
 * becomes an allocated reason (the caller frees). Returns 0, or a negative
 * code when the push cannot be inspected at all (detail in al_error_last(),
 * safe to show the client). */
int gp_inspect_push(const struct gp_inspect *in, const struct gp_receive *r, char **reasons);

/* Looks for well-known secret formats and `secrets` in data[0..len). On a hit
 * returns 1 and sets *what to a static description. */
int gp_scan_buffer(const char **what, const char *data, size_t len,
                   const struct al_strlist *secrets);

#endif
