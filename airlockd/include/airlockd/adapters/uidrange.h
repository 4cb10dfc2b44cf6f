/* Session uid ranges that never collide (uidrange.c).
 *
 * Every session's sandbox user is a host uid (and the gid of the same
 * number) from the daemon's uid_range. At start airlockd checks that range
 * against every id the host already gives out — accounts (/etc/passwd,
 * /etc/group and what the user database enumerates), subordinate ranges
 * (/etc/subuid, /etc/subgid) — and against the ranges of the other airlockd
 * processes of this host, which each record theirs under /run. A range
 * given in the configuration that overlaps is refused; without one, the
 * daemon picks a free range once and keeps it in its state dir.
 *
 * The parsers take (pointer, length), never read past it, and are unit
 * tested and fuzzed; ald_uidr_claim() takes every path from its caller, so
 * the tests feed it scratch files.
 */
#ifndef ALD_UIDRANGE_H
#define ALD_UIDRANGE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Where a range is searched when the configuration sets none: 65536-aligned
 * starts from 0x70000000, ending before 0x7ffe0000. That is above the
 * subordinate ranges useradd hands out (SUB_UID_MAX 600100000 by default)
 * and systemd's container ranges (524288…1879048191), below 2^31 and below
 * systemd's "foreign" range (0x7ffe0000…0x7ffeffff): a part of the uid
 * space nothing on a usual host allocates from. */
#define ALD_UIDR_AUTO_FIRST 0x70000000ULL
#define ALD_UIDR_AUTO_END   0x7ffe0000ULL
#define ALD_UIDR_AUTO_STEP  0x10000ULL

/* One 32-bit id space: uids and gids are both kept below this. */
#define ALD_UIDR_ID_END 0x100000000ULL

/* Largest file read: passwd, group, subuid, subgid. */
#define ALD_UIDR_FILE_MAX (64 * 1024 * 1024)

/* A run of host ids [start, start + count) that something holds, and a
 * description of who for messages ("/etc/subuid: bob:165536:65536"). */
struct ald_idrange {
    uint64_t start, count;
    char what[320];
};

/* A growable list of taken ranges. Zero-initialise; free with
 * ald_idset_free(). */
struct ald_idset {
    struct ald_idrange *v;
    size_t n, cap;
};

void ald_idset_free(struct ald_idset *set);

/* Appends [start, start + count) clipped to the 32-bit id space (nothing is
 * added when it lies wholly above it or count is 0). 0 or AL_ENOMEM. */
int ald_idset_add(struct ald_idset *set, uint64_t start, uint64_t count, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The first range of `set` that shares an id with [start, start + count),
 * or NULL. */
const struct ald_idrange *ald_idset_overlap(const struct ald_idset *set, uint64_t start,
                                            uint64_t count);

/* Lines that were not understood, for a warning. */
struct ald_uidr_bad {
    size_t count;
    size_t first_line; /* 1-based; 0 when count is 0 */
};

/* Adds every range of an /etc/subuid or /etc/subgid text (`len` bytes, no
 * NUL needed): lines "owner:start:count"; blank lines and lines starting
 * with '#' are skipped. Numbers are read as shadow's newuidmap reads them
 * (strtoul base 0: decimal, 0x hex, 0 octal); a range is clipped at 2^32.
 * Lines newuidmap would not accept either add nothing and are counted in
 * *bad (may be NULL). `file` names the file in each description
 * ("/etc/subuid: bob:165536:65536"). 0 or AL_ENOMEM. */
int ald_uidr_subid_parse(struct ald_idset *set, const char *file, const char *data, size_t len,
                         struct ald_uidr_bad *bad);

/* Adds the uid and the gid of every /etc/passwd line
 * ("name:x:uid:gid:gecos:home:shell"; "alice uid 200005", "alice gid
 * 200005"). Blank and '#' lines are skipped, as glibc does; other lines
 * without a decimal uid and gid in fields 3 and 4 are counted in *bad. */
int ald_uidr_passwd_parse(struct ald_idset *set, const char *file, const char *data, size_t len,
                          struct ald_uidr_bad *bad);

/* Adds the gid of every /etc/group line ("name:x:gid:members"). */
int ald_uidr_group_parse(struct ald_idset *set, const char *file, const char *data, size_t len,
                         struct ald_uidr_bad *bad);

/* Reads the "Uid:" and "Gid:" lines of a /proc/PID/status text: ids[0..3]
 * the real, effective, saved and filesystem uids, ids[4..7] the gids;
 * *dead = 1 when its "State:" is Z (zombie) or X (dead): such a process can
 * no longer be signalled or traced, nor use its ids. 0, or AL_EINVAL when
 * the Uid or Gid line is missing or malformed. */
int ald_uidr_status_parse(uint32_t ids[8], int *dead, const char *data, size_t len);

/* A running daemon's record (/run/airlock/uid-ranges/<hash>.range), JSON:
 * {"start": N, "count": N, "pid": N, "state_dir": "/abs/path"}. */
struct ald_uidr_record {
    uint64_t start, count;
    long pid;
    char state_dir[4096];
};

/* Parses a record of `len` bytes (at most 8192). 0 or AL_EINVAL. */
int ald_uidr_record_parse(struct ald_uidr_record *out, const char *data, size_t len);

/* The range a daemon kept in its state dir (uid-range.json):
 * {"start": N, "count": N}. 0 or AL_EINVAL. */
int ald_uidr_saved_parse(uint64_t *start, uint64_t *count, const char *data, size_t len);

/* The lowest start s = first + k * step (k = 0, 1, ...) with
 * [s, s + count) inside [first, end) that shares no id with a range of
 * `taken`: *out. AL_ENOTFOUND when there is none, AL_EINVAL when count or
 * step is 0. */
int ald_uidr_pick(uint64_t *out, const struct ald_idset *taken, uint64_t count, uint64_t first,
                  uint64_t end, uint64_t step);

/* What ald_uidr_claim() reads. A NULL path skips that source. */
struct ald_uidr_sources {
    const char *passwd, *group, *subuid, *subgid;
    const char *run_dir;  /* the records of running daemons; created 0755 */
    const char *proc_dir; /* processes running as ids of a range */
    int nss;              /* also enumerate the user and group databases */
    int spread;           /* a picked range's search starts at the state dir's
                           * own slot (docs/airlockd.md, "Session uids"),
                           * not at ALD_UIDR_AUTO_FIRST */
};

/* /etc/passwd, /etc/group, /etc/subuid, /etc/subgid, /run/airlock/uid-ranges,
 * /proc, NSS, spread. */
extern const struct ald_uidr_sources ald_uidr_system;

/* The range a daemon holds: the record's descriptor keeps the record's lock
 * for the daemon's life. */
struct ald_uidr_claim {
    uint64_t start, count;
    const struct ald_uidr_sources *src; /* borrowed: must outlive the claim */
    int record_fd;                      /* -1: none */
    char run_dir[4096];
    char record_name[48];
};

/* Decides the daemon's session uid range and records it, atomically
 * against other daemons starting at the same moment (an exclusive lock on
 * <run_dir>/.lock around the check and the record).
 *
 * With `explicit_range` the range is [start, start + count) as configured;
 * without, the range kept in <state_dir>/uid-range.json (its start, this
 * `count`), or else the first free one (ald_uidr_pick over
 * ALD_UIDR_AUTO_FIRST…ALD_UIDR_AUTO_END from the state dir's own slot when
 * src->spread, wrapping round; also avoiding ids that running
 * processes use), which is then kept there (mode 0600). The range in use is
 * always written there, so a later start without uid_range keeps it.
 *
 * Refused (AL_EEXISTS, the message names the overlap) when the range shares
 * an id with an account, a subordinate range, the range of another running
 * airlockd, or that of one that was killed while a process still runs with
 * an id of it; also when an airlockd already runs on this state dir.
 * Records of daemons that are gone (their lock is free) are removed.
 * On success `out` holds the range and the locked record; the caller ends
 * with ald_uidr_release(). */
int ald_uidr_claim(struct ald_uidr_claim *out, const struct ald_uidr_sources *src,
                   const char *state_dir, int explicit_range, uint64_t start, uint64_t count);

/* Removes the record (a clean stop) and lets its lock go. Safe on a claim
 * that failed or was released. */
void ald_uidr_release(struct ald_uidr_claim *c);

#endif
