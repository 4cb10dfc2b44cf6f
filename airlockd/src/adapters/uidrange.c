/* Session uid ranges that never collide: see uidrange.h.
 *
 * ald_uidr_claim() is a list of steps under one lock: open the records
 * directory, take its lock, gather what is taken (accounts, subordinate
 * ranges, running processes, other daemons' records), decide the range,
 * keep it in the state dir, write and lock this daemon's record, let the
 * directory lock go. */
#include "airlockd/adapters/uidrange.h"

#include "airlockd/adapters/reaper.h"

#include "airlockd/core/util.h"

#include "airlock/buf.h"
#include "airlock/cleanup.h"
#include "airlock/error.h"
#include "airlock/hex.h"
#include "airlock/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/sha.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

const struct ald_uidr_sources ald_uidr_system = {
    .passwd = "/etc/passwd",
    .group = "/etc/group",
    .subuid = "/etc/subuid",
    .subgid = "/etc/subgid",
    .run_dir = "/run/airlock/uid-ranges",
    .proc_dir = "/proc",
    .nss = 1,
    .spread = 1,
};

#define RECORD_MAX    8192
#define SAVED_MAX     4096
#define STATUS_MAX    16384
#define NSS_MAX       1000000 /* entries enumerated per database */
#define SAVED_NAME    "uid-range.json"
#define RECORD_SUFFIX ".range"
#define LOCK_NAME     ".lock"
#define ID_MAX        (ALD_UIDR_ID_END - 1)

/* ---- the set of taken ranges ---- */

void ald_idset_free(struct ald_idset *set)
{
    free(set->v);
    memset(set, 0, sizeof(*set));
}

int ald_idset_add(struct ald_idset *set, uint64_t start, uint64_t count, const char *fmt, ...)
{
    if (count == 0 || start >= ALD_UIDR_ID_END)
        return 0;
    if (count > ALD_UIDR_ID_END - start)
        count = ALD_UIDR_ID_END - start;
    if (set->n == set->cap) {
        size_t cap = set->cap ? set->cap * 2 : 64;
        struct ald_idrange *v = realloc(set->v, cap * sizeof(*v));
        if (!v)
            return AL_ENOMEM;
        set->v = v;
        set->cap = cap;
    }
    struct ald_idrange *r = &set->v[set->n++];
    r->start = start;
    r->count = count;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->what, sizeof(r->what), fmt, ap);
    va_end(ap);
    return 0;
}

static int ranges_meet(uint64_t a, uint64_t an, uint64_t b, uint64_t bn)
{
    return an && bn && a < b + bn && b < a + an;
}

const struct ald_idrange *ald_idset_overlap(const struct ald_idset *set, uint64_t start,
                                            uint64_t count)
{
    for (size_t i = 0; i < set->n; i++)
        if (ranges_meet(set->v[i].start, set->v[i].count, start, count))
            return &set->v[i];
    return NULL;
}

/* ---- parsers ---- */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* A digit's value in any base up to 16; 99 (above every base) for none. */
static int digit_value(char c)
{
    int v = al_hex_digit((unsigned char)c);
    return v < 0 ? 99 : v;
}

/* Reads the whole field [p, p + len) as strtoul(field, &end, base) reads a
 * string, requiring `end` at the field's end (white space may also follow
 * the digits): leading white space, a sign ('-' negates modulo 2^64, as
 * strtoul does), base 0 prefixes ("0x" hex, "0" octal). *overflow is set
 * when the value passes 2^64 - 1 (strtoul's ERANGE). 0, or AL_EINVAL when
 * there are no digits or other bytes follow. */
static int field_ulong(const char *p, size_t len, int base, uint64_t *out, int *overflow)
{
    size_t i = 0;
    while (i < len && is_space(p[i]))
        i++;
    int neg = 0;
    if (i < len && (p[i] == '+' || p[i] == '-'))
        neg = p[i++] == '-';
    if (base == 0) {
        if (i + 2 < len && p[i] == '0' && (p[i + 1] == 'x' || p[i + 1] == 'X') &&
            digit_value(p[i + 2]) < 16) {
            base = 16;
            i += 2;
        } else
            base = i < len && p[i] == '0' ? 8 : 10;
    }
    uint64_t v = 0;
    size_t digits = 0;
    *overflow = 0;
    for (; i < len && digit_value(p[i]) < base; i++, digits++) {
        unsigned d = (unsigned)digit_value(p[i]);
        if (v > (UINT64_MAX - d) / (unsigned)base)
            *overflow = 1;
        else
            v = v * (unsigned)base + d;
    }
    while (i < len && is_space(p[i]))
        i++;
    if (digits == 0 || i != len)
        return AL_EINVAL;
    *out = *overflow ? UINT64_MAX : neg ? (uint64_t)0 - v : v;
    return 0;
}

/* Copies at most 120 bytes of [p, p + len) into out for a message, bytes
 * that are not printable ASCII shown as '?', "..." when cut. */
static void printable(char *out, size_t size, const char *p, size_t len)
{
    size_t n = 0, max = size - 4 < 120 ? size - 4 : 120;
    for (; n < len && n < max; n++)
        out[n] = p[n] >= 0x20 && p[n] < 0x7f ? p[n] : '?';
    if (n < len)
        for (int k = 0; k < 3; k++)
            out[n++] = '.';
    out[n] = '\0';
}

/* Splits [p, p + len) at ':' into at most `max` fields (the last takes the
 * rest of the line). Returns how many. */
static size_t split_colon(const char *p, size_t len, const char **f, size_t *flen, size_t max)
{
    size_t n = 0, at = 0;
    while (n < max) {
        const char *c = n + 1 < max ? memchr(p + at, ':', len - at) : NULL;
        size_t end = c ? (size_t)(c - p) : len;
        f[n] = p + at;
        flen[n] = end - at;
        n++;
        if (!c)
            break;
        at = end + 1;
    }
    return n;
}

static void bad_line(struct ald_uidr_bad *bad, size_t line)
{
    if (!bad)
        return;
    if (bad->count++ == 0)
        bad->first_line = line;
}

enum line_kind { LINE_SUBID, LINE_PASSWD, LINE_GROUP };

/* One line of a subuid/subgid, passwd or group file. 0, or AL_ENOMEM;
 * a malformed line is counted in *bad. */
static int parse_line(struct ald_idset *set, enum line_kind kind, const char *file, const char *p,
                      size_t len, size_t lineno, struct ald_uidr_bad *bad)
{
    size_t skip = 0;
    /* glibc skips leading blanks of passwd and group lines; newuidmap
     * does not, but a comment is never an owner it matches */
    while (kind != LINE_SUBID && skip < len && is_space(p[skip]))
        skip++;
    if (skip == len || p[skip] == '#')
        return 0;
    p += skip;
    len -= skip;
    const char *f[7];
    size_t fl[7];
    char name[80], shown[128];
    uint64_t a, b;
    int over_a, over_b;
    if (kind == LINE_SUBID) {
        /* newuidmap: three non-empty fields, strtoul base 0, no ERANGE
         * (fields after the third are ignored) */
        size_t n = split_colon(p, len, f, fl, 4);
        if (n < 3 || fl[0] == 0 || fl[1] == 0 || fl[2] == 0 ||
            field_ulong(f[1], fl[1], 0, &a, &over_a) < 0 ||
            field_ulong(f[2], fl[2], 0, &b, &over_b) < 0 || over_a || over_b) {
            bad_line(bad, lineno);
            return 0;
        }
        printable(shown, sizeof(shown), p, len);
        return ald_idset_add(set, a, b, "%s: %s", file, shown);
    }
    /* glibc: the id is (uid_t)strtoul(field, base 10): kept modulo 2^32 */
    size_t want = kind == LINE_PASSWD ? 4 : 3;
    size_t n = split_colon(p, len, f, fl, want + 1);
    if (n < want || field_ulong(f[2], fl[2], 10, &a, &over_a) < 0 ||
        (kind == LINE_PASSWD && field_ulong(f[3], fl[3], 10, &b, &over_b) < 0)) {
        /* "+" and "-" lines (NIS compat) carry no ids */
        if (p[0] != '+' && p[0] != '-')
            bad_line(bad, lineno);
        return 0;
    }
    printable(name, sizeof(name), f[0], fl[0]);
    if (kind == LINE_GROUP)
        return ald_idset_add(set, a & ID_MAX, 1, "%s: group %s gid %llu", file, name,
                             (unsigned long long)(a & ID_MAX));
    int err = ald_idset_add(set, a & ID_MAX, 1, "%s: user %s uid %llu", file, name,
                            (unsigned long long)(a & ID_MAX));
    if (err == 0)
        err = ald_idset_add(set, b & ID_MAX, 1, "%s: user %s gid %llu", file, name,
                            (unsigned long long)(b & ID_MAX));
    return err;
}

static int parse_lines(struct ald_idset *set, enum line_kind kind, const char *file,
                       const char *data, size_t len, struct ald_uidr_bad *bad)
{
    if (bad)
        memset(bad, 0, sizeof(*bad));
    size_t at = 0, lineno = 0;
    int err = 0;
    while (at < len && err == 0) {
        const char *nl = memchr(data + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - data) : len;
        err = parse_line(set, kind, file, data + at, end - at, ++lineno, bad);
        at = end + 1;
    }
    return err;
}

int ald_uidr_subid_parse(struct ald_idset *set, const char *file, const char *data, size_t len,
                         struct ald_uidr_bad *bad)
{
    return parse_lines(set, LINE_SUBID, file, data, len, bad);
}

int ald_uidr_passwd_parse(struct ald_idset *set, const char *file, const char *data, size_t len,
                          struct ald_uidr_bad *bad)
{
    return parse_lines(set, LINE_PASSWD, file, data, len, bad);
}

int ald_uidr_group_parse(struct ald_idset *set, const char *file, const char *data, size_t len,
                         struct ald_uidr_bad *bad)
{
    return parse_lines(set, LINE_GROUP, file, data, len, bad);
}

/* The four decimal ids after "Uid:" or "Gid:" at the start of a line. */
static int status_ids(uint32_t ids[4], const char *data, size_t len, const char *key)
{
    size_t at = 0;
    while (at < len) {
        const char *nl = memchr(data + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - data) : len;
        const char *p = data + at;
        size_t n = end - at;
        at = end + 1;
        if (n < 4 || memcmp(p, key, 4) != 0)
            continue;
        size_t i = 4;
        for (int k = 0; k < 4; k++) {
            if (i >= n || (p[i] != '\t' && p[i] != ' '))
                return AL_EINVAL;
            while (i < n && (p[i] == '\t' || p[i] == ' '))
                i++;
            uint64_t v = 0;
            size_t d = 0;
            for (; i < n && p[i] >= '0' && p[i] <= '9' && d < 11; i++, d++)
                v = v * 10 + (uint64_t)(p[i] - '0');
            if (d == 0 || v > ID_MAX)
                return AL_EINVAL;
            ids[k] = (uint32_t)v;
        }
        while (i < n && (p[i] == '\t' || p[i] == ' '))
            i++;
        return i == n ? 0 : AL_EINVAL;
    }
    return AL_EINVAL;
}

int ald_uidr_status_parse(uint32_t ids[8], int *dead, const char *data, size_t len)
{
    *dead = 0;
    for (size_t at = 0; at < len;) {
        const char *nl = memchr(data + at, '\n', len - at);
        size_t end = nl ? (size_t)(nl - data) : len;
        size_t i = at + 6;
        if (end - at > 6 && memcmp(data + at, "State:", 6) == 0) {
            while (i < end && (data[i] == '\t' || data[i] == ' '))
                i++;
            *dead = i < end && (data[i] == 'Z' || data[i] == 'X');
            break;
        }
        at = end + 1;
    }
    int err = status_ids(ids, data, len, "Uid:");
    return err < 0 ? err : status_ids(ids + 4, data, len, "Gid:");
}

static int json_u64(json_t *o, const char *key, uint64_t min, uint64_t max, uint64_t *out)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) < min ||
        (uint64_t)json_integer_value(v) > max)
        return AL_EINVAL;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

int ald_uidr_record_parse(struct ald_uidr_record *out, const char *data, size_t len)
{
    memset(out, 0, sizeof(*out));
    if (len > RECORD_MAX)
        return AL_EINVAL;
    json_t *o = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
    uint64_t pid = 0;
    json_t *sd = json_object_get(o, "state_dir");
    const char *s = json_string_value(sd);
    int err = AL_EINVAL;
    if (json_is_object(o) && json_u64(o, "start", 0, ID_MAX, &out->start) == 0 &&
        json_u64(o, "count", 1, ALD_UIDR_ID_END, &out->count) == 0 &&
        json_u64(o, "pid", 1, INT32_MAX, &pid) == 0 && s && s[0] == '/' &&
        strlen(s) == json_string_length(sd) && strlen(s) < sizeof(out->state_dir)) {
        memcpy(out->state_dir, s, strlen(s) + 1);
        out->pid = (long)pid;
        err = 0;
    }
    json_decref(o);
    return err;
}

int ald_uidr_saved_parse(uint64_t *start, uint64_t *count, const char *data, size_t len)
{
    if (len > SAVED_MAX)
        return AL_EINVAL;
    json_t *o = json_loadb(data, len, JSON_REJECT_DUPLICATES, NULL);
    int err = json_is_object(o) && json_u64(o, "start", 1000, ID_MAX, start) == 0 &&
                      json_u64(o, "count", 1, ALD_UIDR_ID_END, count) == 0 &&
                      *start + *count <= ALD_UIDR_ID_END
                  ? 0
                  : AL_EINVAL;
    json_decref(o);
    return err;
}

/* ---- the free-range picker ---- */

int ald_uidr_pick(uint64_t *out, const struct ald_idset *taken, uint64_t count, uint64_t first,
                  uint64_t end, uint64_t step)
{
    if (count == 0 || step == 0)
        return AL_EINVAL;
    uint64_t s = first;
    while (s < end && count <= end - s) {
        const struct ald_idrange *r = ald_idset_overlap(taken, s, count);
        if (!r) {
            *out = s;
            return 0;
        }
        /* the first start past the range in the way (every start before
         * it would overlap it too); past > s, so this always moves on */
        uint64_t past = r->start + r->count;
        s = first + (past - first + step - 1) / step * step;
    }
    return AL_ENOTFOUND;
}

/* ---- gathering what is taken ---- */

/* Reads a whole file (at most buf->max bytes) into buf. 1 when it does not
 * exist, 0 when read, else an error. */
static int read_optional(struct al_buf *buf, const char *path)
{
    int err = al_buf_read_file(buf, path);
    if (err < 0 && access(path, F_OK) < 0 && errno == ENOENT)
        return 1;
    return err;
}

typedef int (*file_parser)(struct ald_idset *, const char *, const char *, size_t,
                           struct ald_uidr_bad *);

static int load_file(struct ald_idset *set, const char *path, file_parser parse)
{
    if (!path)
        return 0;
    struct al_buf buf;
    al_buf_init(&buf, ALD_UIDR_FILE_MAX);
    int err = read_optional(&buf, path);
    if (err < 0) {
        char why[256];
        snprintf(why, sizeof(why), "%s", al_error_last());
        err = al_error_set(err, "cannot check the uid range against %s: %s", path, why);
    }
    struct ald_uidr_bad bad = {0, 0};
    if (err == 0)
        err = parse(set, path, buf.ptr ? buf.ptr : "", buf.len, &bad);
    else if (err == 1)
        err = 0;
    if (bad.count)
        al_log(AL_LOG_WARN, "%s: %zu line%s not understood, ignored (the first: line %zu)", path,
               bad.count, bad.count == 1 ? "" : "s", bad.first_line);
    al_buf_free(&buf);
    return err;
}

/* Every user and group the user database enumerates (NSS: files, systemd,
 * and directories that allow enumeration). Single-threaded start-up only. */
static int load_nss(struct ald_idset *set)
{
    int err = 0;
    size_t n = 0;
    char name[80];
    struct passwd *pw;
    setpwent();
    while (err == 0 && n++ < NSS_MAX && (pw = getpwent())) {
        printable(name, sizeof(name), pw->pw_name, strlen(pw->pw_name));
        err = ald_idset_add(set, pw->pw_uid, 1, "the user database: user %s uid %u", name,
                            (unsigned)pw->pw_uid);
        if (err == 0)
            err = ald_idset_add(set, pw->pw_gid, 1, "the user database: user %s gid %u", name,
                                (unsigned)pw->pw_gid);
    }
    endpwent();
    n = 0;
    struct group *gr;
    setgrent();
    while (err == 0 && n++ < NSS_MAX && (gr = getgrent())) {
        printable(name, sizeof(name), gr->gr_name, strlen(gr->gr_name));
        err = ald_idset_add(set, gr->gr_gid, 1, "the group database: group %s gid %u", name,
                            (unsigned)gr->gr_gid);
    }
    endgrent();
    return err;
}

static int is_number(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (*s < '0' || *s > '9')
            return 0;
    return 1;
}

/* Adds the ids every running process uses ("process 123 runs as uid N").
 * Processes that end meanwhile, and zombies, are skipped. */
static int load_procs(struct ald_idset *set, const char *proc_dir)
{
    if (!proc_dir)
        return 0;
    DIR *dir = opendir(proc_dir);
    if (!dir)
        return al_error_set_errno(AL_EIO, errno, "opendir %s", proc_dir);
    int err = 0;
    char buf[STATUS_MAX];
    struct dirent *de;
    while (err == 0 && (de = readdir(dir))) {
        if (!is_number(de->d_name) || strlen(de->d_name) > 10)
            continue;
        char path[32];
        snprintf(path, sizeof(path), "%s/status", de->d_name);
        cleanup_fd int fd = openat(dirfd(dir), path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        size_t len = 0;
        ssize_t r;
        while (len < sizeof(buf) && (r = read(fd, buf + len, sizeof(buf) - len)) > 0)
            len += (size_t)r;
        uint32_t ids[8];
        int dead;
        if (ald_uidr_status_parse(ids, &dead, buf, len) < 0 || dead)
            continue;
        for (int i = 0; i < 8 && err == 0; i++) {
            int seen = 0;
            for (int j = 0; j < i; j++)
                seen |= ids[j] == ids[i];
            if (!seen)
                err = ald_idset_add(set, ids[i], 1, "process %s runs as %s %u", de->d_name,
                                    i < 4 ? "uid" : "gid", (unsigned)ids[i]);
        }
    }
    closedir(dir);
    return err;
}

/* Everything the claim works with; released by claim_ctx_free(). */
struct claim_ctx {
    const struct ald_uidr_sources *src;
    char state_dir[PATH_MAX]; /* canonical */
    int dir_fd, lock_fd;
    struct ald_idset taken; /* ids no range of ours may use */
    struct ald_idset procs; /* ids running processes use */
    uint64_t start, count;
};

static void claim_ctx_free(struct claim_ctx *c)
{
    if (c->lock_fd >= 0)
        close(c->lock_fd); /* lets the directory lock go */
    if (c->dir_fd >= 0)
        close(c->dir_fd);
    ald_idset_free(&c->taken);
    ald_idset_free(&c->procs);
}

/* "<32 hex digits of SHA-256(state dir)>.range" */
static void record_name(char out[48], const char *state_dir)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    char hex[2 * SHA256_DIGEST_LENGTH + 1];
    SHA256((const unsigned char *)state_dir, strlen(state_dir), md);
    ald_hex(hex, md, 16);
    snprintf(out, 48, "%.32s%s", hex, RECORD_SUFFIX);
}

/* Creates the directories of `path` that are missing (0755). */
static int mkdir_parents(const char *path)
{
    char tmp[PATH_MAX];
    size_t len = strlen(path);
    if (len == 0 || len >= sizeof(tmp) || path[0] != '/')
        return al_error_set(AL_EINVAL, "%s: expected an absolute path", path);
    memcpy(tmp, path, len + 1);
    for (size_t i = 1; i <= len; i++) {
        if (tmp[i] != '/' && tmp[i] != '\0')
            continue;
        char c = tmp[i];
        tmp[i] = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return al_error_set_errno(AL_EIO, errno, "mkdir %s", tmp);
        tmp[i] = c;
    }
    return 0;
}

/* 0 when the directory open at fd belongs to us and nobody else may write
 * to it. */
static int dir_trusted(int fd, const char *path)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        return al_error_set_errno(AL_EIO, errno, "stat %s", path);
    if (st.st_uid != geteuid() || (st.st_mode & 022))
        return al_error_set(AL_EPERM, "%s: must belong to uid %u and be writable by no one else",
                            path, (unsigned)geteuid());
    return 0;
}

/* The records directory, created when missing: it and its parent must
 * belong to us and be writable by nobody else (or anyone could forge,
 * remove or hold records). */
static int open_run_dir(struct claim_ctx *c)
{
    const char *dir = c->src->run_dir;
    int err = mkdir_parents(dir);
    if (err < 0)
        return err;
    c->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (c->dir_fd < 0)
        return al_error_set_errno(AL_EIO, errno, "open %s", dir);
    cleanup_fd int parent = openat(c->dir_fd, "..", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (parent < 0)
        return al_error_set_errno(AL_EIO, errno, "open %s/..", dir);
    if ((err = dir_trusted(c->dir_fd, dir)) < 0)
        return err;
    char up[PATH_MAX];
    snprintf(up, sizeof(up), "%s/..", dir);
    return dir_trusted(parent, up);
}

/* The lock that makes check-and-record atomic (held until the context is
 * freed; a starting daemon waits here for another one to finish). */
static int lock_run_dir(struct claim_ctx *c)
{
    c->lock_fd = openat(c->dir_fd, LOCK_NAME, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (c->lock_fd < 0)
        return al_error_set_errno(AL_EIO, errno, "open %s/%s", c->src->run_dir, LOCK_NAME);
    while (flock(c->lock_fd, LOCK_EX) < 0)
        if (errno != EINTR)
            return al_error_set_errno(AL_EIO, errno, "lock %s/%s", c->src->run_dir, LOCK_NAME);
    return 0;
}

static int load_accounts(struct claim_ctx *c)
{
    const struct ald_uidr_sources *s = c->src;
    /* the overflow id and the 16-bit (uid_t)-1 are nobody's to give */
    int err = ald_idset_add(&c->taken, 65534, 2, "the overflow id 65534 and 65535 ((uint16_t)-1)");
    if (err == 0)
        err = load_file(&c->taken, s->passwd, ald_uidr_passwd_parse);
    if (err == 0)
        err = load_file(&c->taken, s->group, ald_uidr_group_parse);
    if (err == 0)
        err = load_file(&c->taken, s->subuid, ald_uidr_subid_parse);
    if (err == 0)
        err = load_file(&c->taken, s->subgid, ald_uidr_subid_parse);
    if (err == 0 && s->nss)
        err = load_nss(&c->taken);
    return err;
}

/* Reads the record `name` (at most RECORD_MAX bytes) from fd. */
static int read_record(int fd, struct ald_uidr_record *rec)
{
    char buf[RECORD_MAX + 1];
    ssize_t n = pread(fd, buf, sizeof(buf), 0);
    if (n < 0 || n > RECORD_MAX)
        return AL_EINVAL;
    return ald_uidr_record_parse(rec, buf, (size_t)n);
}

/* One file of the records directory. A live record (its lock is held)
 * reserves its range; a stale one (its daemon is gone) is removed, unless
 * a process still runs with an id of its range (the sandboxes of a killed
 * daemon outlive it): then it still reserves it. This state dir's own
 * record is taken over when stale and refuses the start when live. */
static int scan_record(struct claim_ctx *c, const char *name, const char *own)
{
    cleanup_fd int fd = openat(c->dir_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
        return 0;
    int live = flock(fd, LOCK_EX | LOCK_NB) < 0;
    if (live && errno != EWOULDBLOCK)
        return al_error_set_errno(AL_EIO, errno, "lock %s/%s", c->src->run_dir, name);
    struct ald_uidr_record rec;
    int readable = read_record(fd, &rec) == 0;
    if (live && !readable)
        return al_error_set(AL_EIO, "%s/%s: the record of a running airlockd is unreadable",
                            c->src->run_dir, name);
    if (strcmp(name, own) == 0) {
        if (live)
            return al_error_set(AL_EEXISTS, "another airlockd (pid %ld) runs with state dir %s",
                                rec.pid, rec.state_dir);
        return 0;
    }
    if (live)
        return ald_idset_add(&c->taken, rec.start, rec.count,
                             "the range of the airlockd with state dir %s (pid %ld)", rec.state_dir,
                             rec.pid);
    const struct ald_idrange *p =
        readable ? ald_idset_overlap(&c->procs, rec.start, rec.count) : NULL;
    if (p)
        return ald_idset_add(&c->taken, rec.start, rec.count,
                             "the range of the airlockd with state dir %s (pid %ld, gone; "
                             "its sandboxes still run: %s)",
                             rec.state_dir, rec.pid, p->what);
    if (unlinkat(c->dir_fd, name, 0) < 0)
        return al_error_set_errno(AL_EIO, errno, "unlink %s/%s", c->src->run_dir, name);
    al_log(AL_LOG_INFO, "removed the stale uid range record %s/%s%s%s", c->src->run_dir, name,
           readable ? " of state dir " : "", readable ? rec.state_dir : "");
    return 0;
}

static int scan_records(struct claim_ctx *c, const char *own)
{
    int fd = dup(c->dir_fd);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dir) {
        if (fd >= 0)
            close(fd);
        return al_error_set_errno(AL_EIO, errno, "opendir %s", c->src->run_dir);
    }
    int err = 0;
    struct dirent *de;
    size_t sl = strlen(RECORD_SUFFIX);
    while (err == 0 && (de = readdir(dir))) {
        size_t n = strlen(de->d_name);
        if (de->d_name[0] == '.' || n <= sl || strcmp(de->d_name + n - sl, RECORD_SUFFIX) != 0)
            continue;
        err = scan_record(c, de->d_name, own);
    }
    closedir(dir);
    return err;
}

static int refuse(const struct claim_ctx *c, const char *how, const struct ald_idrange *r)
{
    return al_error_set(AL_EEXISTS, "uid_range %llu+%llu%s overlaps %s",
                        (unsigned long long)c->start, (unsigned long long)c->count, how, r->what);
}

/* The range kept in the state dir: 1 with *start, 0 when none. */
static int saved_read(const struct claim_ctx *c, uint64_t *start, uint64_t *count)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", c->state_dir, SAVED_NAME);
    struct al_buf buf;
    al_buf_init(&buf, SAVED_MAX);
    int err = read_optional(&buf, path);
    if (err == 0 && ald_uidr_saved_parse(start, count, buf.ptr ? buf.ptr : "", buf.len) < 0)
        err = al_error_set(AL_EINVAL,
                           "%s: expected {\"start\": N, \"count\": N}; remove it only once no "
                           "sandbox of this daemon runs, or set uid_range",
                           path);
    else if (err == 0)
        err = 1;
    else if (err == 1)
        err = 0;
    else {
        char why[256];
        snprintf(why, sizeof(why), "%s", al_error_last());
        err = al_error_set(err, "%s: %s", path, why);
    }
    al_buf_free(&buf);
    return err;
}

/* Writes the range in use to the state dir (0600, replaced atomically). */
static int saved_write(const struct claim_ctx *c)
{
    char path[PATH_MAX + 32], tmp[PATH_MAX + 40], text[96];
    snprintf(path, sizeof(path), "%s/%s", c->state_dir, SAVED_NAME);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int n = snprintf(text, sizeof(text), "{\"start\": %llu, \"count\": %llu}\n",
                     (unsigned long long)c->start, (unsigned long long)c->count);
    cleanup_fd int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, text, (size_t)n) != n || fsync(fd) < 0 || rename(tmp, path) < 0)
        return al_error_set_errno(AL_EIO, errno, "writing %s", path);
    return 0;
}

/* The slot (0 … slots-1) a picked range starts its search at: the first
 * 8 bytes of SHA-256 of the canonical state dir, big-endian, modulo the
 * number of slots of ALD_UIDR_AUTO_STEP between ALD_UIDR_AUTO_FIRST and
 * ALD_UIDR_AUTO_END (docs/airlockd.md, "Session uids"). */
static uint64_t home_slot(const char *state_dir)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)state_dir, strlen(state_dir), md);
    uint64_t h = 0;
    for (int i = 0; i < 8; i++)
        h = h << 8 | md[i];
    return h % ((ALD_UIDR_AUTO_END - ALD_UIDR_AUTO_FIRST) / ALD_UIDR_AUTO_STEP);
}

/* Picks, checks or keeps the range (c->start, c->count). */
static int decide(struct claim_ctx *c, int explicit_range)
{
    uint64_t saved_start = 0, saved_count = 0;
    int saved = saved_read(c, &saved_start, &saved_count);
    if (saved < 0 && explicit_range) {
        /* the configured range wins; the file is rewritten below */
        al_log(AL_LOG_WARN, "%s", al_error_last());
        saved = 0;
    }
    if (saved < 0)
        return saved;
    const struct ald_idrange *r;
    if (explicit_range) {
        if ((r = ald_idset_overlap(&c->taken, c->start, c->count)))
            return refuse(c, "", r);
        if (saved && (saved_start != c->start || saved_count != c->count))
            al_log(AL_LOG_WARN,
                   "uid_range changed from %llu+%llu to %llu+%llu: sessions from before keep "
                   "their uids",
                   (unsigned long long)saved_start, (unsigned long long)saved_count,
                   (unsigned long long)c->start, (unsigned long long)c->count);
    } else if (saved) {
        /* Never moved silently: sandboxes re-adopted from an earlier start
         * run with uids of this range. */
        c->start = saved_start;
        if (c->start + c->count > ALD_UIDR_ID_END - 0x10000)
            return al_error_set(AL_EINVAL, "the uid range kept in %s/%s passes the largest uid",
                                c->state_dir, SAVED_NAME);
        if ((r = ald_idset_overlap(&c->taken, c->start, c->count))) {
            char how[PATH_MAX + 128];
            snprintf(how, sizeof(how),
                     " (kept in %s/%s since an earlier start; not moved, as this daemon's "
                     "sandboxes may use it: free the ids or set uid_range)",
                     c->state_dir, SAVED_NAME);
            return refuse(c, how, r);
        }
    } else {
        /* avoid ids running processes use as well (sandboxes of a daemon
         * that left no record, or of one that was killed) */
        for (size_t i = 0; i < c->procs.n; i++) {
            const struct ald_idrange *p = &c->procs.v[i];
            if (ald_idset_add(&c->taken, p->start, p->count, "%s", p->what) < 0)
                return AL_ENOMEM;
        }
        /* from a slot of its own (the state dir's hash), wrapping round
         * to the first: a range another daemon gave up when it stopped is
         * not the next start's first choice, so a daemon that restarts
         * finds its kept range still free */
        uint64_t first = ALD_UIDR_AUTO_FIRST;
        if (c->src->spread)
            first += home_slot(c->state_dir) * ALD_UIDR_AUTO_STEP;
        if (ald_uidr_pick(&c->start, &c->taken, c->count, first, ALD_UIDR_AUTO_END,
                          ALD_UIDR_AUTO_STEP) < 0 &&
            ald_uidr_pick(&c->start, &c->taken, c->count, ALD_UIDR_AUTO_FIRST, ALD_UIDR_AUTO_END,
                          ALD_UIDR_AUTO_STEP) < 0)
            return al_error_set(AL_ENOTFOUND, "no free uid range of %llu ids between %llu and %llu",
                                (unsigned long long)c->count,
                                (unsigned long long)ALD_UIDR_AUTO_FIRST,
                                (unsigned long long)ALD_UIDR_AUTO_END);
        al_log(AL_LOG_INFO, "uid_range: picked %llu+%llu (kept in %s/%s)",
               (unsigned long long)c->start, (unsigned long long)c->count, c->state_dir,
               SAVED_NAME);
    }
    if (saved && saved_start == c->start && saved_count == c->count)
        return 0;
    return saved_write(c);
}

/* Creates (or takes over) this daemon's record and locks it for good. */
static int write_record(struct claim_ctx *c, struct ald_uidr_claim *out)
{
    int fd = openat(c->dir_fd, out->record_name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return al_error_set_errno(AL_EIO, errno, "open %s/%s", c->src->run_dir, out->record_name);
    out->record_fd = fd;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0)
        return al_error_set_errno(AL_EIO, errno, "lock %s/%s", c->src->run_dir, out->record_name);
    json_t *o = json_pack("{s:I, s:I, s:I, s:s}", "start", (json_int_t)c->start, "count",
                          (json_int_t)c->count, "pid", (json_int_t)ald_reaper_front_pid(),
                          "state_dir", c->state_dir);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    int err = 0;
    size_t len = text ? strlen(text) : 0;
    if (!text)
        err = AL_ENOMEM;
    else if (ftruncate(fd, 0) < 0 || pwrite(fd, text, len, 0) != (ssize_t)len)
        err = al_error_set_errno(AL_EIO, errno, "writing %s/%s", c->src->run_dir, out->record_name);
    free(text);
    return err;
}

int ald_uidr_claim(struct ald_uidr_claim *out, const struct ald_uidr_sources *src,
                   const char *state_dir, int explicit_range, uint64_t start, uint64_t count)
{
    memset(out, 0, sizeof(*out));
    out->record_fd = -1;
    out->src = src;
    struct claim_ctx c;
    memset(&c, 0, sizeof(c));
    c.src = src;
    c.dir_fd = c.lock_fd = -1;
    c.start = start;
    c.count = count;
    int err = 0;
    if (count == 0 || start + count > ALD_UIDR_ID_END) {
        err = al_error_set(AL_EINVAL, "uid_range: bad range");
        goto out;
    }
    if (!realpath(state_dir, c.state_dir)) {
        err = al_error_set_errno(AL_EIO, errno, "realpath %s", state_dir);
        goto out;
    }
    if (strlen(src->run_dir) >= sizeof(out->run_dir)) {
        err = al_error_set(AL_ETOOBIG, "%s: path too long", src->run_dir);
        goto out;
    }
    snprintf(out->run_dir, sizeof(out->run_dir), "%s", src->run_dir);
    record_name(out->record_name, c.state_dir);
    /* Every step below runs under the directory lock, so two daemons that
     * start together see each other: the second one waits for the first
     * one's record. */
    if ((err = open_run_dir(&c)) < 0 || (err = lock_run_dir(&c)) < 0 ||
        (err = load_accounts(&c)) < 0 || (err = load_procs(&c.procs, src->proc_dir)) < 0 ||
        (err = scan_records(&c, out->record_name)) < 0 || (err = decide(&c, explicit_range)) < 0)
        goto out;
    out->start = c.start;
    out->count = c.count;
    err = write_record(&c, out);
out:
    if (err < 0 && out->record_fd >= 0) {
        /* a record we could not finish is nobody's: the next start
         * removes it (its lock is free) */
        close(out->record_fd);
        out->record_fd = -1;
    }
    claim_ctx_free(&c);
    return err;
}

void ald_uidr_release(struct ald_uidr_claim *c)
{
    if (c->record_fd < 0)
        return;
    /* Under the directory lock, like every change of the records. The
     * record stays (unlocked, so stale) while a process runs with an id of
     * the range: the sandboxes outlive a stop and are re-adopted by the
     * next start, and meanwhile no other daemon may take their uids. */
    int dir_fd = open(c->run_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    int lock_fd = dir_fd >= 0 ? openat(dir_fd, LOCK_NAME, O_RDWR | O_NOFOLLOW | O_CLOEXEC) : -1;
    if (lock_fd >= 0)
        while (flock(lock_fd, LOCK_EX) < 0 && errno == EINTR)
            ;
    struct ald_idset procs = {0};
    int busy = load_procs(&procs, c->src->proc_dir) < 0 ||
               ald_idset_overlap(&procs, c->start, c->count) != NULL;
    ald_idset_free(&procs);
    if (dir_fd >= 0 && !busy && unlinkat(dir_fd, c->record_name, 0) < 0)
        al_log(AL_LOG_WARN, "unlink %s/%s: %s", c->run_dir, c->record_name, strerror(errno));
    close(c->record_fd);
    c->record_fd = -1;
    if (lock_fd >= 0)
        close(lock_fd);
    if (dir_fd >= 0)
        close(dir_fd);
}
