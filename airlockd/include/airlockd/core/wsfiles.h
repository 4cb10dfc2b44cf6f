/* Workspace file access for airlockd: read, list, write, mkdir and delete
 * files confined to one session's workspace directory.
 *
 * The workspace belongs to the sandbox, which runs concurrently and may swap
 * any directory for a symlink at any moment. So every function here works on
 * descriptors, never on path strings joined on the host: a client path is
 * first normalised (wsf_path_normalize), then resolved beneath the workspace
 * root descriptor with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), and
 * every change is made with *at() calls on a single name relative to a
 * directory descriptor obtained that way.
 *
 * Symlinks inside the workspace that stay inside are followed while resolving
 * (absolute symlinks and ones whose ".." climbs above the root are not:
 * AL_EPERM "path leaves the workspace"). The last component of a path that is
 * written or deleted is never followed: PUT replaces a symlink by the new
 * file, DELETE removes the symlink, not its target.
 *
 * Hard links: a file in the workspace may be a hard link to a file elsewhere
 * on the same mount. The sandbox can only make one to a file it could already
 * read (its workspace is a separate bind mount, and the kernel's
 * protected_hardlinks forbids links to others' files it cannot read or
 * write), so GET of such a link hands out nothing the sandbox could not read
 * itself. Writes never go through an existing inode (PUT renames a new file
 * into place), so a hard link never lets a client modify an outside file.
 *
 * Errors: 0 or a negative AL_E* code with al_error_last() set (a message
 * naming the normalised path, fit for the client), and the API status it
 * suits (docs/api.md):
 *   AL_EINVAL     malformed path, or a path component is not a directory
 *                 (400 invalid_path);
 *   AL_EPERM      the path is refused: it leaves the workspace (symlink out,
 *                 /proc magic link, symlink loop), names a FIFO, device or
 *                 socket, a mount point, or the root where that is not
 *                 allowed (400 invalid_path);
 *   AL_ENOTFOUND  the path (or a parent) does not exist (404);
 *   AL_EEXISTS    a parent exists and is not a directory, the target is a
 *                 directory where a file is needed (or a file where a
 *                 directory is needed), or a directory is not empty (409);
 *   AL_EAGAIN     the sandbox kept changing the tree under a retried
 *                 operation (409 or 503);
 *   AL_ETOOBIG    the disk or quota is full on write (507);
 *   AL_EUNSUPP    the kernel lacks openat2 (Linux < 5.6; also valgrind
 *                 3.19, which does not know the syscall);
 *   AL_ENOMEM, AL_EIO  as usual (500).
 * All functions are thread-safe (no shared state beyond the descriptors
 * given); a struct wsf_upload belongs to one thread at a time.
 */
#ifndef AIRLOCKD_WSFILES_H
#define AIRLOCKD_WSFILES_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#define WSF_PATH_MAX        4096  /* bytes of a client path (before folding) */
#define WSF_NAME_MAX        255   /* bytes of one component */
#define WSF_COMPONENTS_MAX  256   /* components of a path */
#define WSF_LIST_MAX        10000 /* entries returned by a directory listing */
#define WSF_DELETE_OPEN_MAX 64    /* directories a recursive delete holds open */

/* Validates a client-supplied relative path (already percent-decoded; `len`
 * bytes, need not be NUL-terminated) and writes the normalised form, NUL
 * terminated, into `out` (size `outsz`; WSF_PATH_MAX + 1 always suffices,
 * the result is never longer than `len`).
 *
 * Empty components are folded ("a//b/" -> "a/b") and "." components dropped
 * ("./a/." -> "a"); "" (and "." or "./") normalise to "", the root, which
 * only wsf_get (a listing), wsf_stat and wsf_mkdir (a no-op) accept.
 * Refused with AL_EINVAL and a reason: an absolute path, any ".."
 * component, a NUL or control byte (< 0x20, 0x7f), bytes that are not valid
 * UTF-8 (paths are echoed in JSON), a component longer than WSF_NAME_MAX,
 * more than WSF_PATH_MAX bytes, more than WSF_COMPONENTS_MAX components.
 * AL_ETOOBIG when `outsz` is too small (out is then ""). */
int wsf_path_normalize(const char *path, size_t len, char *out, size_t outsz);

/* Opens the workspace root (O_PATH | O_DIRECTORY | O_CLOEXEC) into *out_fd,
 * which the caller closes. `workspace_dir` is trusted (daemon configuration)
 * and may itself be reached through symlinks. */
int wsf_root_open(const char *workspace_dir, int *out_fd);

enum wsf_type {
    WSF_FILE = 0,
    WSF_DIR = 1,
    WSF_SYMLINK = 2,
    WSF_OTHER = 3, /* FIFO, socket, device */
};

struct wsf_stat {
    int type;         /* enum wsf_type */
    uint64_t size;    /* bytes (st_size) */
    unsigned mode;    /* permission bits, st_mode & 07777 */
    int64_t mtime_ns; /* modification time, ns since the epoch */
};

/* "file", "dir", "symlink" or "other". */
const char *wsf_type_name(int type);

/* Writes `ns` (since the epoch) as RFC 3339 UTC with milliseconds,
 * "2026-11-23T18:05:35.123Z", into out (size >= 25). */
void wsf_time_format(int64_t ns, char *out, size_t outsz);

/* The listing entry for one stat, {"name", "type", "size", "mode": "0644",
 * "mtime"}; a new reference (caller json_decref), NULL when out of memory or
 * `name` is not valid UTF-8. Used for PUT/mkdir replies too. */
json_t *wsf_stat_json(const char *name, const struct wsf_stat *st);

/* Opens `rel` (normalised) beneath root_fd for reading, following symlinks
 * that stay inside the workspace.
 *  - a regular file: *out_fd = a new O_RDONLY|O_CLOEXEC descriptor (caller
 *    closes), *st filled, *out_listing = NULL;
 *  - a directory: *out_fd = -1, *st filled, *out_listing = a new object
 *    {"path": rel, "entries": [entry, ...]} (entries as wsf_stat_json, sorted
 *    by name bytewise, symlinks shown as "symlink", not followed; caller
 *    json_decref). At most WSF_LIST_MAX entries (the smallest names), with
 *    "truncated": true when there were more. Names that are not valid UTF-8
 *    are left out and counted in "unlisted": N (present only when N > 0).
 *  - a FIFO, socket or device: AL_EPERM; it is never opened for I/O (the
 *    object is reached with O_PATH, which neither blocks nor has side
 *    effects, and only a regular file or directory is then reopened).
 * On error *out_fd = -1 and *out_listing = NULL. `st` may be NULL. */
int wsf_get(int root_fd, const char *rel, int *out_fd, struct wsf_stat *st, json_t **out_listing);

/* Fills *st for `rel` (normalised, "" = root) beneath root_fd, following
 * symlinks that stay inside like wsf_get, without opening the object for
 * I/O (any type, FIFOs included). For replies such as mkdir's entry. */
int wsf_stat(int root_fd, const char *rel, struct wsf_stat *st);

/* Atomic streamed upload of `rel` (normalised, not the root).
 *
 * wsf_put_begin creates the missing parent directories (mode 0755, owned by
 * uid:gid) and an unnamed temporary file in the target directory (O_TMPFILE,
 * or a random ".airlock-upload-*" name where the filesystem lacks it), owned
 * by uid:gid with mode 0644. On success *out is a new upload the caller ends
 * with exactly one of wsf_put_commit or wsf_put_abort.
 *
 * wsf_put_write appends `len` bytes (short writes retried). The caller
 * enforces the size limit with wsf_put_bytes. After an error the upload can
 * only be aborted.
 *
 * wsf_put_commit renames the file over `rel`: a symlink at `rel` is replaced
 * (never followed); an existing directory is refused (AL_EEXISTS, upload
 * removed); a replaced regular file's permission bits (& 0777) are kept.
 * Sets *created (1 new, 0 replaced) and *st (either may be NULL). No fsync.
 * Always frees u, also on error (the temporary file is then removed).
 *
 * wsf_put_abort removes the temporary file and frees u; NULL is a no-op. */
struct wsf_upload;
int wsf_put_begin(int root_fd, const char *rel, uid_t uid, gid_t gid, struct wsf_upload **out);
int wsf_put_write(struct wsf_upload *u, const void *data, size_t len);
uint64_t wsf_put_bytes(const struct wsf_upload *u);
int wsf_put_commit(struct wsf_upload *u, int *created, struct wsf_stat *st);
void wsf_put_abort(struct wsf_upload *u);

/* Creates directory `rel` (normalised; "" is the root: 0, *created 0) and its missing parents,
 * each mode 0755 owned by uid:gid. *created (may be NULL) = 1 when `rel` was
 * made, 0 when it already was a directory; AL_EEXISTS when it or a parent
 * exists and is not a directory (a symlink to a directory inside the
 * workspace counts as a directory). */
int wsf_mkdir(int root_fd, const char *rel, uid_t uid, gid_t gid, int *created);

/* Removes `rel` (normalised): a file, a symlink (not its target) or an empty
 * directory; AL_EEXISTS when a directory is not empty and `recursive` is 0.
 * With `recursive`, removes a directory tree: every directory is opened with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV) on one
 * name relative to its parent's descriptor, so symlinks met in the tree are
 * removed as links, a directory swapped for a symlink mid-walk is not
 * followed, and mount points are not entered (AL_EPERM). Any depth works
 * with at most WSF_DELETE_OPEN_MAX directories open: a subtree below that
 * is first moved up into the tree's top directory (as ".airlock-rm-*").
 * AL_EAGAIN when the sandbox keeps adding entries faster than they go (the
 * tree is then partly removed). Removing the root ("") is refused
 * (AL_EPERM). */
int wsf_delete(int root_fd, const char *rel, int recursive);

#endif
