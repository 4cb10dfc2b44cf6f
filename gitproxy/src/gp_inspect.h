/* Push inspection in a front worker: the pushed pack is indexed as it
 * streams (libgit2's indexer, into a scratch directory under the cache),
 * then every object in it is scanned for secrets and each update's
 * fast-forward is decided from the pack's own commits, with a mirror of the
 * upstream repository fetched only when they do not reach the old tip. */
#ifndef GP_INSPECT_H
#define GP_INSPECT_H

#include <stddef.h>
#include <stdint.h>

#include "airlock/gp_packscan.h"
#include "airlock/gp_scan.h"

/* Deltas larger than this are not resolved: see gp_pack_scan_at(). */
#define GP_SCAN_OBJECT_MAX (64u << 20)

/* Call once per process before anything else here: libgit2 with bounded
 * caches, no configuration file search paths, strict object checks.
 * `ca_file` may be NULL. */
int gp_inspect_global_init(const char *ca_file);

typedef struct gp_pack gp_pack;

/* Starts indexing a pushed pack into a new scratch directory under
 * `cache_dir`/tmp. The caller frees with gp_pack_free(), which removes it. */
int gp_pack_new(gp_pack **out, const char *cache_dir);

/* Feeds the next bytes of the pack. AL_EINVAL when they are malformed
 * (detail in al_error_last(), safe to show the client). */
int gp_pack_append(gp_pack *pk, const void *data, size_t len);

/* Ends the pack: checks its trailer and resolves its deltas. AL_EINVAL when
 * it is malformed, incomplete, or refers to objects it does not hold (a
 * thin pack). An empty request body (no pack at all) is fine: `none` set. */
int gp_pack_commit(gp_pack *pk, int none);

/* Called now and then during long checks (keep-alives). */
typedef void (*gp_pack_tick_fn)(void *payload);

/* Scans the objects at offs[0..n) of the pack (what the streaming scan
 * left for after indexing, gp_packscan.h: deltas, large trees), resolved:
 * blobs, commits and tags whole, trees' entry names. On a hit returns 1 and
 * *why (allocated) says where ("config/deploy.env contains a GitHub
 * token", "commit 1234abcd (its message or an identity) contains ..."),
 * never the secret itself; a delta larger than GP_SCAN_OBJECT_MAX is a
 * hit too (it cannot be read whole). 0 when clean; a negative code when the
 * pack cannot be read. */
int gp_pack_scan_at(gp_pack *pk, const uint64_t *offs, size_t n, const gp_secretset *set,
                    char **why, gp_pack_tick_fn tick, void *payload);

/* *why (allocated) for a hit the streaming scan found in the entry at
 * `offset` (enum gp_obj_type `type`, `what` found). 1, or a negative code. */
int gp_pack_describe(gp_pack *pk, uint64_t offset, int type, const char *what, char **why);

/* Decides whether `new_hex` descends from `old_hex` using only the commits
 * in the pack. Returns enum gp_ff or a negative code. */
int gp_pack_descends(gp_pack *pk, const char *new_hex, const char *old_hex);

/* The pack's .idx and .pack paths (after gp_pack_commit), for the mirror. */
const char *gp_pack_idx_path(const gp_pack *pk);

void gp_pack_free(gp_pack *pk);

/* Updates the mirror of `repo` under `cache_dir`/mirrors through the key
 * holder (a second channel `ch` of this connection, gp_chan.h), then
 * decides with its history and the pack whether new descends from old.
 * Returns enum gp_ff (GP_FF_UNKNOWN when old is not upstream any more:
 * "fetch first"), or a negative code with *fault the HTTP status it
 * deserves: 502 when upstream could not be fetched, 503 when the mirror
 * could not be made or read here (detail in al_error_last()). */
int gp_mirror_descends(int *fault, const char *cache_dir, const char *repo, int ch, gp_pack *pk,
                       const char *new_hex, const char *old_hex);

#endif
