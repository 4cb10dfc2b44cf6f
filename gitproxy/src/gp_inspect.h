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

/* Whose failure kept a push from being inspected (gp_inspect_push()). */
enum gp_inspect_fault {
    GP_INSPECT_FAULT_PROXY,    /* the proxy's own: mirror, quarantine, spool, memory */
    GP_INSPECT_FAULT_UPSTREAM, /* upstream could not be fetched into the mirror */
};

/* Call once at start-up, before any thread uses libgit2: libgit2 init, no
 * git configuration read from anywhere (search paths emptied), owner
 * validation on, memory bounds; `ca_file` may be NULL. */
int gp_inspect_global_init(const char *ca_file);

/* Inspects the push. Returns 0 once it was inspected: for each command i
 * that must be refused, reasons[i] becomes an allocated reason (the caller
 * frees), the push's own faults included (a secret, a non-fast-forward, a
 * malformed or incomplete pack). Returns a negative code when it could not
 * be inspected for a reason that is not the push's: *fault says whose, and
 * al_error_last() the detail, for the proxy's log (it names paths and
 * URLs, never a credential; not for the client). */
int gp_inspect_push(const struct gp_inspect *in, const struct gp_receive *r, char **reasons,
                    enum gp_inspect_fault *fault);

/* Looks for well-known secret formats and `secrets` in data[0..len). On a hit
 * returns 1 and sets *what to a static description. */
int gp_scan_buffer(const char **what, const char *data, size_t len,
                   const struct al_strlist *secrets);

#endif
