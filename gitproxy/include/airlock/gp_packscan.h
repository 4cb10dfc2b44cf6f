/* The leak guard and the fast-forward check over a pack as it streams: a
 * parser of git's pack format (version 2 or 3, SHA-1 object ids) that
 * inflates every whole object (commit, tree, blob, tag) as its bytes arrive
 * and scans it (gp_scan.h): commits and tags whole (messages, identities),
 * trees by entry name, blobs whole, of any size, in bounded memory. It also
 * computes every whole object's id and keeps the commits' parents, so that
 * a push whose pack holds no delta is decided without indexing it. Deltas
 * cannot be scanned before their bases are resolved: their offsets are
 * listed for a scan after the pack is indexed (gp_inspect.h). The pack's
 * trailing checksum is verified.
 *
 * It reads untrusted bytes: every length is bounded, nothing is trusted,
 * and any departure from the format is an error. libgit2's indexer reads
 * the same bytes and decides whether the pack is valid; this parser only
 * has to find what is in the objects, and refuses (fails closed) anything
 * it cannot follow. Pure: no I/O. */
#ifndef AIRLOCK_GP_PACKSCAN_H
#define AIRLOCK_GP_PACKSCAN_H

#include <stddef.h>
#include <stdint.h>

#include "airlock/gp_scan.h"

#define GP_PACKSCAN_TREE_MAX (1u << 20) /* trees larger are scanned after indexing */

enum gp_obj_type {
    GP_OBJ_COMMIT = 1,
    GP_OBJ_TREE = 2,
    GP_OBJ_BLOB = 3,
    GP_OBJ_TAG = 4,
    GP_OBJ_OFS_DELTA = 6,
    GP_OBJ_REF_DELTA = 7,
};

#define GP_PACKSCAN_COMMIT_HEAD (64u << 10) /* bytes of a commit read for its parents */

enum gp_ff {
    GP_FF_YES = 1,     /* new descends from old through the pack's commits */
    GP_FF_NO = 0,      /* the pack's history of new is complete without old */
    GP_FF_UNKNOWN = 2, /* the history leaves the pack: upstream must tell */
};

typedef struct gp_packscan gp_packscan;

/* A scanner for one pack; `set` (may be NULL: patterns only) must outlive
 * it. With `scan` 0 it only follows the pack (ids, commits, checksum) and
 * never reports a hit (the leak guard is off). 0, AL_ENOMEM or AL_ERROR. */
int gp_packscan_new(gp_packscan **out, const gp_secretset *set, int scan);

void gp_packscan_free(gp_packscan *ps);

/* Feeds the next bytes of the pack. Returns 0, 1 when an object holds a
 * secret (gp_packscan_hit(); later bytes are only parsed, not scanned), or
 * AL_EINVAL when the bytes are not a pack this parser can follow (detail in
 * al_error_last()), or AL_ENOMEM. */
int gp_packscan_feed(gp_packscan *ps, const void *data, size_t len);

/* After the last byte: 0 when the pack ended exactly after its last entry
 * and its 20-byte trailer, else AL_EINVAL. */
int gp_packscan_finish(gp_packscan *ps);

/* The first hit: the offset of its entry in the pack, its type and what
 * was found (a static string). 0 when there was none. */
int gp_packscan_hit(const gp_packscan *ps, uint64_t *offset, enum gp_obj_type *type,
                    const char **what);

/* The offsets of the entries that still need a scan once the pack is
 * indexed: deltas, and trees larger than GP_PACKSCAN_TREE_MAX. Borrowed. */
const uint64_t *gp_packscan_later(const gp_packscan *ps, size_t *n);

/* Scans the entry names of a raw tree (mode SP name NUL id, repeated) for
 * `set`'s secrets and the patterns: 1 on a hit (*what set; also when a name
 * could not be scanned), else 0. */
int gp_tree_scan_names(const char **what, const void *tree, size_t len, const gp_secretset *set);

/* Decides from the pack's commits (after gp_packscan_finish()) whether
 * `new_hex` descends from `old_hex` (40 lower-case hex digits each).
 * Returns enum gp_ff; AL_EINVAL for a bad id; AL_EAGAIN when this scan
 * cannot tell (the pack has deltas, or a commit too long to read its
 * parents): then index it and ask gp_pack_descends() (gp_inspect.h). */
int gp_packscan_descends(gp_packscan *ps, const char *new_hex, const char *old_hex);

/* Objects in the pack (its header's count; 0 before the header). */
uint32_t gp_packscan_count(const gp_packscan *ps);

#endif
