/* The front of airlock-gitproxy (front.c, worker*.c): processes that parse
 * what sandboxes send and hold no key and no real credential. */
#ifndef GP_FRONT_H
#define GP_FRONT_H

#include <stdint.h>

/* What the key holder tells the front at start (ZYGOTE_INIT). */
struct gp_front_cfg {
    char cache_dir[4096]; /* work files: pushed packs, mirrors */
    int leak_guard;       /* scan pushed objects for secrets */
    int check_ff;         /* refuse non-fast-forward updates */
    uint64_t max_push;    /* largest receive-pack body */
    int verbose;
};

/* The front's main(), when the program runs with --front FD (FD: the
 * channel to the key holder). Returns the process exit status. */
int gp_front_main(int zfd);

/* Serves one client connection (`client`) whose channel to the key holder
 * is `ch`, in a forked worker; closes neither. 0, or a negative code when
 * the connection ended in an error (already answered where possible). */
int gp_worker_serve(const struct gp_front_cfg *cfg, int client, int ch);

/* Loads the front's seccomp filter (no_new_privs must be set). */
int gp_front_seccomp_apply(void);

#endif
