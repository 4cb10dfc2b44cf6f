/* The head of a git-receive-pack request: shallow lines, the command list
 * (first command carries the capabilities after a NUL), a flush, then push
 * options (when the "push-options" capability was sent) and a flush. The pack
 * follows and is not parsed here.
 */
#ifndef AIRLOCK_GP_RECEIVE_H
#define AIRLOCK_GP_RECEIVE_H

#include <stddef.h>

#include "airlock/strlist.h"

#define GP_RECEIVE_HEAD_MAX    (1u << 20) /* bytes before the pack */
#define GP_RECEIVE_MAX_CMDS    1000
#define GP_RECEIVE_MAX_SHALLOW 1000
#define GP_OID_HEX             40

struct gp_command {
    char old_oid[GP_OID_HEX + 1];
    char new_oid[GP_OID_HEX + 1];
    char *ref;
};

struct gp_receive {
    struct gp_command *cmds;
    size_t ncmds;
    struct al_strlist caps;    /* capabilities of the first command */
    struct al_strlist options; /* push options */
    struct al_strlist shallow; /* object ids of the shallow lines */
    size_t head_len;           /* bytes of the request before the pack */
    int probe;                 /* the body was just "0000" */
};

/* Parses the head of a receive-pack request from buf[0..len). Returns 0 when
 * the head is complete (out filled, caller frees with gp_receive_clear()),
 * AL_EAGAIN when more bytes are needed (out empty), AL_EINVAL when
 * malformed (detail in al_error_last()), AL_ETOOBIG past the bounds. */
int gp_receive_parse(struct gp_receive *out, const char *buf, size_t len);

void gp_receive_clear(struct gp_receive *r);

/* True when the capability `name` was sent (exactly, or as "name=..."). */
int gp_receive_has_cap(const struct gp_receive *r, const char *name);

/* True when oid is 40 zeros. */
int gp_oid_is_zero(const char *oid);

#endif
