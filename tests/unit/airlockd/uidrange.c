/* uidrange.c: the subuid/passwd/group/status/record parsers on good and
 * malformed input, the overlap test, the free-range picker on synthetic
 * taken sets, and ald_uidr_claim() on scratch files, a scratch records
 * directory and a fake /proc (records of "running" daemons are files this
 * test holds a flock on, as a daemon does). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "airlockd/core/config.h"
#include "airlockd/adapters/uidrange.h"

#include "airlock/error.h"

/* ---- helpers ---- */

static size_t n_ranges(const struct ald_idset *s)
{
    return s->n;
}

static void expect_range(const struct ald_idset *s, size_t i, uint64_t start, uint64_t count,
                         const char *what)
{
    assert_true(i < s->n);
    assert_int_equal(s->v[i].start, start);
    assert_int_equal(s->v[i].count, count);
    if (what)
        assert_string_equal(s->v[i].what, what);
}

/* ---- subuid / subgid ---- */

static void test_subid_good(void **state)
{
    (void)state;
    struct ald_idset s = {0};
    struct ald_uidr_bad bad;
    const char text[] = "alice:100000:65536\n"
                        "# bob:1:2 is a comment\n"
                        "\n"
                        "bob:165536:65536\n"
                        "1001:0x40000:0200\n"   /* numeric owner, hex start, octal count */
                        "carol:  300000:+10\n"  /* strtoul's blanks and sign */
                        "dave:400000:5:extra\n" /* newuidmap ignores a 4th field */
                        "erin:500000:7\r\n"     /* a CR after the digits */
                        "last:600000:1";        /* no final newline */
    assert_int_equal(ald_uidr_subid_parse(&s, "/etc/subuid", text, sizeof(text) - 1, &bad), 0);
    assert_int_equal(bad.count, 0);
    assert_int_equal(n_ranges(&s), 7);
    expect_range(&s, 0, 100000, 65536, "/etc/subuid: alice:100000:65536");
    expect_range(&s, 1, 165536, 65536, "/etc/subuid: bob:165536:65536");
    expect_range(&s, 2, 0x40000, 128, NULL);
    expect_range(&s, 3, 300000, 10, NULL);
    expect_range(&s, 4, 400000, 5, NULL);
    expect_range(&s, 5, 500000, 7, "/etc/subuid: erin:500000:7?");
    expect_range(&s, 6, 600000, 1, NULL);
    ald_idset_free(&s);
}

static void test_subid_malformed(void **state)
{
    (void)state;
    static const char *const bad_lines[] = {
        "alice",                           /* one field */
        "alice:100000",                    /* two */
        ":100000:65536",                   /* empty owner */
        "alice::65536",                    /* empty start */
        "alice:100000:",                   /* empty count */
        "alice:1e5:65536",                 /* not a number */
        "alice:100000:65536x",             /* trailing garbage */
        "alice:0x:5",                      /* "0x" without digits */
        "alice:08:5",                      /* 8 is no octal digit */
        "alice:99999999999999999999999:5", /* ERANGE */
        "alice: :5",                       /* blanks only */
        "   ",                             /* blanks only line */
    };
    for (size_t i = 0; i < sizeof(bad_lines) / sizeof(*bad_lines); i++) {
        struct ald_idset s = {0};
        struct ald_uidr_bad bad;
        char text[128];
        int n = snprintf(text, sizeof(text), "ok:1000:1\n%s\nok2:2000:1\n", bad_lines[i]);
        assert_int_equal(ald_uidr_subid_parse(&s, "f", text, (size_t)n, &bad), 0);
        assert_int_equal(bad.count, 1);
        assert_int_equal(bad.first_line, 2);
        assert_int_equal(n_ranges(&s), 2);
        ald_idset_free(&s);
    }
    /* a NUL inside a line is just a byte that is no digit */
    struct ald_idset s = {0};
    struct ald_uidr_bad bad;
    const char nul[] = "a:1\0000:5\nb:7:1\n";
    assert_int_equal(ald_uidr_subid_parse(&s, "f", nul, sizeof(nul) - 1, &bad), 0);
    assert_int_equal(bad.count, 1);
    expect_range(&s, 0, 7, 1, NULL);
    assert_int_equal(n_ranges(&s), 1);
    ald_idset_free(&s);
    /* the parser never reads past `len`: a line cut before its count */
    const char cut[] = "a:100:65536";
    assert_int_equal(ald_uidr_subid_parse(&s, "f", cut, 6, &bad), 0);
    assert_int_equal(bad.count, 1);
    assert_int_equal(n_ranges(&s), 0);
    /* empty input */
    assert_int_equal(ald_uidr_subid_parse(&s, "f", "", 0, &bad), 0);
    assert_int_equal(bad.count, 0);
    ald_idset_free(&s);
}

static void test_subid_clip(void **state)
{
    (void)state;
    struct ald_idset s = {0};
    struct ald_uidr_bad bad;
    /* past 2^32: clipped; wholly above: nothing; "-1" wraps like strtoul
     * (a count that large covers the rest of the id space) */
    const char text[] = "a:4294967000:65536\nb:5000000000:10\nc:4000000000:-1\n";
    assert_int_equal(ald_uidr_subid_parse(&s, "f", text, sizeof(text) - 1, &bad), 0);
    assert_int_equal(bad.count, 0);
    assert_int_equal(n_ranges(&s), 2);
    expect_range(&s, 0, 4294967000ULL, 296, NULL);
    expect_range(&s, 1, 4000000000ULL, ALD_UIDR_ID_END - 4000000000ULL, NULL);
    ald_idset_free(&s);
    /* a long line is shown cut, with control bytes as '?' */
    char line[400];
    memset(line, 'x', sizeof(line));
    memcpy(line, "\x01name:7:1:", 10);
    assert_int_equal(ald_uidr_subid_parse(&s, "f", line, sizeof(line), &bad), 0);
    assert_int_equal(n_ranges(&s), 1);
    assert_true(strncmp(s.v[0].what, "f: ?name:7:1:xxx", 16) == 0);
    assert_true(strlen(s.v[0].what) < 140);
    assert_non_null(strstr(s.v[0].what, "..."));
    ald_idset_free(&s);
}

/* ---- passwd / group ---- */

static void test_passwd(void **state)
{
    (void)state;
    struct ald_idset s = {0};
    struct ald_uidr_bad bad;
    const char text[] = "root:x:0:0:root:/root:/bin/bash\n"
                        "# comment\n"
                        "  \n"
                        "  alice:x:200005:200006:Alice:/home/alice:/bin/sh\n"
                        "short:x:7:8\n"    /* gecos, home, shell may be missing */
                        "bad:x:abc:1:::\n" /* uid not a number */
                        "bad2:x:12\n"      /* no gid */
                        "+::::::\n"        /* NIS compat: no ids, not malformed */
                        "-bob\n"
                        "wrap:x:4294967297:-1:::\n" /* (uid_t)strtoul: 1, 0xffffffff */
                        "\x1b[31mevil:x:9:9:::";
    assert_int_equal(ald_uidr_passwd_parse(&s, "/etc/passwd", text, sizeof(text) - 1, &bad), 0);
    assert_int_equal(bad.count, 2);
    assert_int_equal(bad.first_line, 6);
    assert_int_equal(n_ranges(&s), 10);
    expect_range(&s, 0, 0, 1, "/etc/passwd: user root uid 0");
    expect_range(&s, 2, 200005, 1, "/etc/passwd: user alice uid 200005");
    expect_range(&s, 3, 200006, 1, "/etc/passwd: user alice gid 200006");
    expect_range(&s, 4, 7, 1, NULL);
    expect_range(&s, 5, 8, 1, NULL);
    expect_range(&s, 6, 1, 1, NULL);
    expect_range(&s, 7, 0xffffffffULL, 1, NULL);
    expect_range(&s, 8, 9, 1, "/etc/passwd: user ?[31mevil uid 9");
    ald_idset_free(&s);

    const char grp[] = "root:x:0:\nstaff:x:50:alice,bob\nnogid:x::\nwheel:x:10\n#x:x:1:\n";
    assert_int_equal(ald_uidr_group_parse(&s, "/etc/group", grp, sizeof(grp) - 1, &bad), 0);
    assert_int_equal(bad.count, 1);
    assert_int_equal(bad.first_line, 3);
    assert_int_equal(n_ranges(&s), 3);
    expect_range(&s, 1, 50, 1, "/etc/group: group staff gid 50");
    expect_range(&s, 2, 10, 1, NULL);
    ald_idset_free(&s);
}

/* ---- /proc/PID/status ---- */

static void test_status(void **state)
{
    (void)state;
    uint32_t ids[8];
    int dead = -1;
    const char ok[] = "Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\n"
                      "Uid:\t1879048192\t1879048193\t1879048194\t1879048195\n"
                      "Gid:\t5\t6\t7\t8\nGroups:\t\n";
    assert_int_equal(ald_uidr_status_parse(ids, &dead, ok, sizeof(ok) - 1), 0);
    assert_int_equal(dead, 0);
    assert_int_equal(ids[0], 1879048192u);
    assert_int_equal(ids[3], 1879048195u);
    assert_int_equal(ids[4], 5);
    assert_int_equal(ids[7], 8);
    static const char *const bad[] = {
        "Name:\tx\n",
        "Uid:\t1\t2\t3\t4\n",                    /* no Gid */
        "Uid:\t1\t2\t3\nGid:\t1\t2\t3\t4\n",     /* three uids */
        "Uid:\t1\t2\t3\t4x\nGid:\t1\t2\t3\t4\n", /* trailing byte */
        "Uid:\t1\t2\t3\t99999999999\nGid:\t1\t2\t3\t4\n",
        "Uid:1\t2\t3\t4\nGid:\t1\t2\t3\t4\n",
        "Uid:\t1\t2\t3\t-4\nGid:\t1\t2\t3\t4\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        assert_int_equal(ald_uidr_status_parse(ids, &dead, bad[i], strlen(bad[i])), AL_EINVAL);
    /* cut inside the Gid line: not read past len */
    assert_int_equal(ald_uidr_status_parse(ids, &dead, ok, 80), AL_EINVAL);
    /* zombies and dead tasks */
    const char z[] = "Name:\tsh\nState:\tZ (zombie)\nUid:\t7\t7\t7\t7\nGid:\t7\t7\t7\t7\n";
    assert_int_equal(ald_uidr_status_parse(ids, &dead, z, sizeof(z) - 1), 0);
    assert_int_equal(dead, 1);
    const char x[] = "State:\tX (dead)\nUid:\t7\t7\t7\t7\nGid:\t7\t7\t7\t7";
    assert_int_equal(ald_uidr_status_parse(ids, &dead, x, sizeof(x) - 1), 0);
    assert_int_equal(dead, 1);
    /* "State:" cut at its end */
    assert_int_equal(ald_uidr_status_parse(ids, &dead, "State:", 6), AL_EINVAL);
    assert_int_equal(dead, 0);
}

/* ---- records and the kept range ---- */

static void test_record(void **state)
{
    (void)state;
    struct ald_uidr_record r;
    const char ok[] = "{\"start\":1879048192,\"count\":60000,\"pid\":42,\"state_dir\":\"/srv/a\"}";
    assert_int_equal(ald_uidr_record_parse(&r, ok, sizeof(ok) - 1), 0);
    assert_int_equal(r.start, 1879048192ULL);
    assert_int_equal(r.count, 60000);
    assert_int_equal(r.pid, 42);
    assert_string_equal(r.state_dir, "/srv/a");
    static const char *const bad[] = {
        "",
        "[]",
        "{\"start\":1,\"count\":1,\"pid\":1}",
        "{\"start\":1,\"count\":0,\"pid\":1,\"state_dir\":\"/a\"}",
        "{\"start\":-1,\"count\":1,\"pid\":1,\"state_dir\":\"/a\"}",
        "{\"start\":4294967296,\"count\":1,\"pid\":1,\"state_dir\":\"/a\"}",
        "{\"start\":1,\"count\":1,\"pid\":0,\"state_dir\":\"/a\"}",
        "{\"start\":1,\"count\":1,\"pid\":1,\"state_dir\":\"rel\"}",
        "{\"start\":1,\"count\":1,\"pid\":1,\"state_dir\":\"/a\\u0000b\"}",
        "{\"start\":\"1\",\"count\":1,\"pid\":1,\"state_dir\":\"/a\"}",
        "{\"start\":1,\"start\":2,\"count\":1,\"pid\":1,\"state_dir\":\"/a\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
        assert_int_equal(ald_uidr_record_parse(&r, bad[i], strlen(bad[i])), AL_EINVAL);

    uint64_t start, count;
    const char saved[] = "{\"start\": 1879048192, \"count\": 60000}\n";
    assert_int_equal(ald_uidr_saved_parse(&start, &count, saved, sizeof(saved) - 1), 0);
    assert_int_equal(start, 1879048192ULL);
    assert_int_equal(count, 60000);
    static const char *const bad_saved[] = {"{}",
                                            "{\"start\": 999, \"count\": 1}",
                                            "{\"start\": 4294967295, \"count\": 2}",
                                            "{\"start\": 1000}",
                                            "null",
                                            "{\"start\": 1000, \"count\": 1"};
    for (size_t i = 0; i < sizeof(bad_saved) / sizeof(*bad_saved); i++)
        assert_int_equal(ald_uidr_saved_parse(&start, &count, bad_saved[i], strlen(bad_saved[i])),
                         AL_EINVAL);
}

/* ---- overlap and picker ---- */

static void test_overlap(void **state)
{
    (void)state;
    struct ald_idset s = {0};
    assert_int_equal(ald_idset_add(&s, 100, 10, "a"), 0); /* 100..109 */
    assert_int_equal(ald_idset_add(&s, 200, 1, "b"), 0);
    assert_int_equal(ald_idset_add(&s, 7, 0, "empty"), 0); /* not added */
    assert_int_equal(ald_idset_add(&s, ALD_UIDR_ID_END, 5, "above"), 0);
    assert_int_equal(n_ranges(&s), 2);
    assert_null(ald_idset_overlap(&s, 90, 10));  /* 90..99: touches, no overlap */
    assert_null(ald_idset_overlap(&s, 110, 90)); /* 110..199 */
    assert_null(ald_idset_overlap(&s, 201, 5));
    assert_null(ald_idset_overlap(&s, 100, 0));
    assert_string_equal(ald_idset_overlap(&s, 90, 11)->what, "a"); /* 90..100 */
    assert_string_equal(ald_idset_overlap(&s, 109, 1)->what, "a");
    assert_string_equal(ald_idset_overlap(&s, 101, 2)->what, "a");  /* inside */
    assert_string_equal(ald_idset_overlap(&s, 0, 1000)->what, "a"); /* around */
    assert_string_equal(ald_idset_overlap(&s, 150, 51)->what, "b");
    ald_idset_free(&s);
}

static void test_pick(void **state)
{
    (void)state;
    struct ald_idset s = {0};
    const uint64_t F = ALD_UIDR_AUTO_FIRST, E = ALD_UIDR_AUTO_END, S = ALD_UIDR_AUTO_STEP;
    uint64_t out = 0;
    /* nothing taken: the first slot */
    assert_int_equal(ald_uidr_pick(&out, &s, 60000, F, E, S), 0);
    assert_int_equal(out, F);
    /* the first slot taken by one id at its very end, the second by a
     * range that reaches into the third: the fourth */
    assert_int_equal(ald_idset_add(&s, F + 59999, 1, "end of slot 0"), 0);
    assert_int_equal(ald_idset_add(&s, F + S + 100, 2 * S, "slots 1-3"), 0);
    assert_int_equal(ald_uidr_pick(&out, &s, 60000, F, E, S), 0);
    assert_int_equal(out, F + 4 * S);
    /* a smaller count fits before the first taken id */
    assert_int_equal(ald_uidr_pick(&out, &s, 59999, F, E, S), 0);
    assert_int_equal(out, F);
    /* an id in the gap between slot 0's range and slot 1 does not matter */
    ald_idset_free(&s);
    assert_int_equal(ald_idset_add(&s, F + 60000, S - 60000, "gap"), 0);
    assert_int_equal(ald_uidr_pick(&out, &s, 60000, F, E, S), 0);
    assert_int_equal(out, F);
    /* but blocks a count of a full step */
    assert_int_equal(ald_uidr_pick(&out, &s, S, F, E, S), 0);
    assert_int_equal(out, F + S);
    /* a count larger than a step */
    assert_int_equal(ald_uidr_pick(&out, &s, 3 * S, F, E, S), 0);
    assert_int_equal(out, F + S);
    ald_idset_free(&s);
    /* everything taken but the last slot; then that too */
    assert_int_equal(ald_idset_add(&s, F, E - F - S, "most"), 0);
    assert_int_equal(ald_uidr_pick(&out, &s, 60000, F, E, S), 0);
    assert_int_equal(out, E - S);
    assert_int_equal(ald_idset_add(&s, E - S + 100, 1, "in the last slot"), 0);
    assert_int_equal(ald_uidr_pick(&out, &s, 60000, F, E, S), AL_ENOTFOUND);
    /* a count that never fits; bad arguments */
    ald_idset_free(&s);
    assert_int_equal(ald_uidr_pick(&out, &s, E - F + 1, F, E, S), AL_ENOTFOUND);
    assert_int_equal(ald_uidr_pick(&out, &s, 0, F, E, S), AL_EINVAL);
    assert_int_equal(ald_uidr_pick(&out, &s, 1, F, E, 0), AL_EINVAL);
    /* many scattered ids: still the first free slot */
    for (uint64_t k = 0; k < 1000; k++)
        assert_int_equal(ald_idset_add(&s, F + k * S + (k * 7919) % 60000, 1, "x"), 0);
    assert_int_equal(ald_uidr_pick(&out, &s, 60000, F, E, S), 0);
    assert_int_equal(out, F + 1000 * S);
    ald_idset_free(&s);
}

/* ---- ald_uidr_claim on scratch files ---- */

static char scratch[] = "/var/tmp/airlockd-uidr-XXXXXX";
static char p_passwd[PATH_MAX], p_group[PATH_MAX], p_subuid[PATH_MAX], p_subgid[PATH_MAX],
    p_run[PATH_MAX], p_proc[PATH_MAX];
static struct ald_uidr_sources src;

static void put(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void path_of(char *out, const char *leaf)
{
    snprintf(out, PATH_MAX, "%s/%s", scratch, leaf);
}

/* A state dir <scratch>/<name> (made when missing); returns its path. */
static const char *state(const char *name)
{
    static char bufs[8][PATH_MAX];
    static int next;
    char *p = bufs[next++ % 8];
    path_of(p, name);
    mkdir(p, 0700);
    return p;
}

/* A fake process in the fake /proc running as `uid` (a zombie when
 * `state` is "Z"). */
static void fake_proc_state(int pid, uint32_t uid, const char *state)
{
    char dir[PATH_MAX + 16], file[PATH_MAX + 32], text[256];
    snprintf(dir, sizeof(dir), "%s/%d", p_proc, pid);
    mkdir(dir, 0755);
    snprintf(file, sizeof(file), "%s/status", dir);
    snprintf(text, sizeof(text),
             "Name:\tsh\nState:\t%s\nUid:\t%u\t%u\t%u\t%u\nGid:\t%u\t%u\t%u\t%u\n", state, uid, uid,
             uid, uid, uid, uid, uid, uid);
    put(file, text);
}

static void fake_proc(int pid, uint32_t uid)
{
    fake_proc_state(pid, uid, "S (sleeping)");
}

static int setup(void **state_)
{
    (void)state_;
    if (!mkdtemp(scratch))
        return -1;
    path_of(p_passwd, "passwd");
    path_of(p_group, "group");
    path_of(p_subuid, "subuid");
    path_of(p_subgid, "subgid");
    path_of(p_run, "run/airlock/uid-ranges");
    path_of(p_proc, "proc");
    mkdir(p_proc, 0755);
    put(p_passwd, "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n");
    put(p_group, "root:x:0:\nalice:x:1000:\n");
    put(p_subuid, "alice:100000:65536\nbob:165536:65536\n");
    put(p_subgid, "alice:100000:65536\n");
    src = (struct ald_uidr_sources){p_passwd, p_group, p_subuid, p_subgid, p_run, p_proc, 0, 0};
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

static int teardown(void **state_)
{
    (void)state_;
    nftw(scratch, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static size_t n_records(void)
{
    size_t n = 0;
    DIR *d = opendir(p_run);
    if (!d)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)))
        n += strstr(de->d_name, ".range") != NULL;
    closedir(d);
    return n;
}

static void test_claim_explicit(void **state_)
{
    (void)state_;
    struct ald_uidr_claim c;
    /* the example of the defect: the default range and Debian's second
     * subordinate range */
    assert_int_equal(ald_uidr_claim(&c, &src, state("e1"), 1, 200000, 60000), AL_EEXISTS);
    char want[PATH_MAX + 80];
    snprintf(want, sizeof(want), "uid_range 200000+60000 overlaps %s: bob:165536:65536", p_subuid);
    assert_string_equal(al_error_last(), want);
    assert_int_equal(n_records(), 0);
    /* an account's uid, a group's gid, a subgid range */
    assert_int_equal(ald_uidr_claim(&c, &src, state("e1"), 1, 1000, 1), AL_EEXISTS);
    assert_non_null(strstr(al_error_last(), "user alice uid 1000"));
    put(p_group, "root:x:0:\nalice:x:1000:\ndevs:x:300500:\n");
    assert_int_equal(ald_uidr_claim(&c, &src, state("e1"), 1, 300000, 1000), AL_EEXISTS);
    assert_non_null(strstr(al_error_last(), "group devs gid 300500"));
    put(p_subgid, "alice:100000:65536\nsvc:400000:10\n");
    assert_int_equal(ald_uidr_claim(&c, &src, state("e1"), 1, 399995, 10), AL_EEXISTS);
    assert_non_null(strstr(al_error_last(), "svc:400000:10"));
    /* 65534/65535 */
    assert_int_equal(ald_uidr_claim(&c, &src, state("e1"), 1, 60000, 10000), AL_EEXISTS);
    assert_non_null(strstr(al_error_last(), "65534"));
    /* a free range: recorded, kept in the state dir (0600) */
    assert_int_equal(ald_uidr_claim(&c, &src, state("e1"), 1, 500000, 1000), 0);
    assert_int_equal(c.start, 500000);
    assert_int_equal(n_records(), 1);
    char kept[PATH_MAX + 32];
    snprintf(kept, sizeof(kept), "%s/uid-range.json", state("e1"));
    struct stat st;
    assert_int_equal(stat(kept, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    /* a second daemon overlapping it is refused, naming the first */
    struct ald_uidr_claim x;
    assert_int_equal(ald_uidr_claim(&x, &src, state("e2"), 1, 500999, 5), AL_EEXISTS);
    assert_int_equal(x.record_fd, -1);
    snprintf(want, sizeof(want),
             "uid_range 500999+5 overlaps the range of the airlockd with state dir %s (pid %ld)",
             state("e1"), (long)getpid());
    assert_string_equal(al_error_last(), want);
    /* next to it is fine */
    struct ald_uidr_claim c2;
    assert_int_equal(ald_uidr_claim(&c2, &src, state("e2"), 1, 501000, 5), 0);
    assert_int_equal(n_records(), 2);
    /* a second daemon on the same state dir is refused */
    assert_int_equal(ald_uidr_claim(&x, &src, state("e1"), 1, 600000, 5), AL_EEXISTS);
    assert_non_null(strstr(al_error_last(), "another airlockd"));
    ald_uidr_release(&c2);
    ald_uidr_release(&c);
    ald_uidr_release(&c); /* twice is harmless */
    assert_int_equal(n_records(), 0);
    /* released: the range is free again */
    assert_int_equal(ald_uidr_claim(&c2, &src, state("e2"), 1, 500999, 5), 0);
    ald_uidr_release(&c2);
    put(p_group, "root:x:0:\nalice:x:1000:\n");
    put(p_subgid, "alice:100000:65536\n");
}

static void test_claim_auto(void **state_)
{
    (void)state_;
    struct ald_uidr_claim a, b, c;
    const uint64_t F = ALD_UIDR_AUTO_FIRST, S = ALD_UIDR_AUTO_STEP;
    assert_int_equal(ald_uidr_claim(&a, &src, state("a1"), 0, 200000, 60000), 0);
    assert_int_equal(a.start, F);
    assert_int_equal(a.count, 60000);
    /* a second daemon at the same time: the next free range */
    assert_int_equal(ald_uidr_claim(&b, &src, state("a2"), 0, 200000, 60000), 0);
    assert_int_equal(b.start, F + S);
    /* a process runs with an id of the third slot: skipped */
    fake_proc(4242, (uint32_t)(F + 2 * S + 17));
    assert_int_equal(ald_uidr_claim(&c, &src, state("a3"), 0, 200000, 60000), 0);
    assert_int_equal(c.start, F + 3 * S);
    ald_uidr_release(&c);
    /* a restart keeps the range, even with the earlier slots free now */
    ald_uidr_release(&a);
    ald_uidr_release(&b);
    assert_int_equal(ald_uidr_claim(&b, &src, state("a2"), 0, 200000, 60000), 0);
    assert_int_equal(b.start, F + S);
    ald_uidr_release(&b);
    /* an account added meanwhile inside the kept range: refused, not moved */
    put(p_subuid, "alice:100000:65536\nbob:165536:65536\nzed:1879113800:10\n");
    assert_int_equal(ald_uidr_claim(&b, &src, state("a2"), 0, 200000, 60000), AL_EEXISTS);
    assert_non_null(strstr(al_error_last(), "uid_range 1879113728+60000 (kept in"));
    assert_non_null(strstr(al_error_last(), "zed:1879113800:10"));
    put(p_subuid, "alice:100000:65536\nbob:165536:65536\n");
    /* a kept range that is not one: refused */
    char kept[PATH_MAX + 32];
    snprintf(kept, sizeof(kept), "%s/uid-range.json", state("a2"));
    put(kept, "{\"start\": 12}");
    assert_int_equal(ald_uidr_claim(&b, &src, state("a2"), 0, 200000, 60000), AL_EINVAL);
    assert_non_null(strstr(al_error_last(), "uid-range.json"));
    /* an explicit range replaces the kept one */
    assert_int_equal(ald_uidr_claim(&b, &src, state("a2"), 1, 700000, 10), 0);
    ald_uidr_release(&b);
    assert_int_equal(ald_uidr_claim(&b, &src, state("a2"), 0, 700000, 20), 0);
    assert_int_equal(b.start, 700000);
    assert_int_equal(b.count, 20);
    ald_uidr_release(&b);
    assert_int_equal(n_records(), 0);
}

/* Writes a record as a daemon would; holds its lock when `live` (the
 * returned descriptor) or leaves it stale (-1). */
static int fake_record(const char *name, uint64_t start, uint64_t count, long pid, const char *dir,
                       int live)
{
    char path[PATH_MAX + 64], text[PATH_MAX + 128];
    snprintf(path, sizeof(path), "%s/%s", p_run, name);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    int n = snprintf(text, sizeof(text),
                     "{\"start\":%llu,\"count\":%llu,\"pid\":%ld,\"state_dir\":\"%s\"}",
                     (unsigned long long)start, (unsigned long long)count, pid, dir);
    assert_int_equal(write(fd, text, (size_t)n), n);
    if (!live) {
        close(fd);
        return -1;
    }
    assert_int_equal(flock(fd, LOCK_EX), 0);
    return fd;
}

static void test_claim_records(void **state_)
{
    (void)state_;
    struct ald_uidr_claim c;
    /* make the directory */
    assert_int_equal(ald_uidr_claim(&c, &src, state("r0"), 1, 800000, 10), 0);
    ald_uidr_release(&c);
    /* a live record of another daemon */
    int fd = fake_record("00000000000000000000000000000001.range", 900000, 100, 77, "/srv/a", 1);
    assert_int_equal(ald_uidr_claim(&c, &src, state("r1"), 1, 900050, 10), AL_EEXISTS);
    assert_string_equal(
        al_error_last(),
        "uid_range 900050+10 overlaps the range of the airlockd with state dir /srv/a (pid 77)");
    close(fd); /* that daemon is killed: the record is stale */
    assert_int_equal(ald_uidr_claim(&c, &src, state("r1"), 1, 900050, 10), 0);
    assert_int_equal(n_records(), 1); /* the stale one removed, ours written */
    ald_uidr_release(&c);
    /* a zombie of a killed daemon's sandbox reserves nothing */
    fake_record("00000000000000000000000000000005.range", 905000, 100, 79, "/srv/z", 0);
    fake_proc_state(4545, 905001, "Z (zombie)");
    assert_int_equal(ald_uidr_claim(&c, &src, state("r1"), 1, 905000, 10), 0);
    ald_uidr_release(&c);
    assert_int_equal(n_records(), 0);
    /* a stale record whose daemon's sandboxes still run keeps its range */
    fake_record("00000000000000000000000000000002.range", 910000, 100, 78, "/srv/b", 0);
    fake_proc(4343, 910042);
    assert_int_equal(ald_uidr_claim(&c, &src, state("r1"), 1, 910000, 10), AL_EEXISTS);
    assert_non_null(strstr(al_error_last(), "state dir /srv/b (pid 78, gone; its sandboxes "
                                            "still run: process 4343 runs as uid 910042)"));
    assert_int_equal(n_records(), 1);
    /* and is not picked either */
    assert_int_equal(ald_uidr_claim(&c, &src, state("r2"), 0, 200000, 60000), 0);
    ald_uidr_release(&c);
    /* a garbage record: stale, removed; live, refused */
    fake_record("00000000000000000000000000000003.range", 1, 1, 1, "relative", 0);
    fd = fake_record("00000000000000000000000000000004.range", 1, 1, 1, "relative", 1);
    assert_int_equal(ald_uidr_claim(&c, &src, state("r1"), 1, 920000, 10), AL_EIO);
    assert_non_null(strstr(al_error_last(), "unreadable"));
    close(fd);
    assert_int_equal(ald_uidr_claim(&c, &src, state("r1"), 1, 920000, 10), 0);
    ald_uidr_release(&c);
    /* only the record kept alive by process 4343 is left */
    assert_int_equal(n_records(), 1);
    /* our own stale record is taken over, even while our sandboxes run */
    assert_int_equal(ald_uidr_claim(&c, &src, state("r3"), 1, 930000, 10), 0);
    fake_proc(4344, 930001);
    ald_uidr_release(&c); /* a process runs in it: the record stays */
    assert_int_equal(n_records(), 2);
    assert_int_equal(ald_uidr_claim(&c, &src, state("r4"), 1, 930000, 10), AL_EEXISTS);
    assert_non_null(strstr(al_error_last(), "gone; its sandboxes still run"));
    assert_int_equal(ald_uidr_claim(&c, &src, state("r3"), 1, 930000, 10), 0);
    ald_uidr_release(&c);
}

static void test_claim_run_dir(void **state_)
{
    (void)state_;
    struct ald_uidr_claim c;
    assert_int_equal(ald_uidr_claim(&c, &src, state("d1"), 1, 940000, 10), 0);
    ald_uidr_release(&c);
    /* a records directory others may write to is not trusted */
    assert_int_equal(chmod(p_run, 0777), 0);
    assert_int_equal(ald_uidr_claim(&c, &src, state("d1"), 1, 940000, 10), AL_EPERM);
    assert_int_equal(chmod(p_run, 0755), 0);
    /* a missing source file is nothing taken; a state dir that is not */
    struct ald_uidr_sources s2 = src;
    s2.subgid = "/nonexistent/subgid";
    assert_int_equal(ald_uidr_claim(&c, &s2, state("d1"), 1, 940000, 10), 0);
    ald_uidr_release(&c);
    assert_int_equal(ald_uidr_claim(&c, &src, "/nonexistent/state", 1, 940000, 10), AL_EIO);
    assert_int_equal(ald_uidr_claim(&c, &src, state("d1"), 1, 4294967290ULL, 10), AL_EINVAL);
}

/* Only uid_range.start makes the range explicit: a count alone keeps the
 * start chosen by the daemon. */
static void test_config_explicit(void **state_)
{
    (void)state_;
    struct ald_config cfg;
    assert_int_equal(ald_config_init(&cfg), 0);
    assert_int_equal(cfg.uid_range_explicit, 0);
    const char count_only[] = "{\"uid_range\": {\"count\": 2}}";
    assert_int_equal(ald_config_load_buffer(&cfg, "t", count_only, sizeof(count_only) - 1), 0);
    assert_int_equal(cfg.uid_range_explicit, 0);
    assert_int_equal(cfg.uid_count, 2);
    const char start[] = "{\"uid_range\": {\"start\": 500000}}";
    assert_int_equal(ald_config_load_buffer(&cfg, "t", start, sizeof(start) - 1), 0);
    assert_int_equal(cfg.uid_range_explicit, 1);
    assert_int_equal(cfg.uid_start, 500000);
    ald_config_free(&cfg);
}

/* The first id of a state dir's own slot (docs/airlockd.md, "Session
 * uids"): SHA-256 of its real path, first 8 bytes big-endian, modulo the
 * number of slots. */
static uint64_t home_of(const char *dir)
{
    char real[PATH_MAX];
    assert_non_null(realpath(dir, real));
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)real, strlen(real), md);
    uint64_t h = 0;
    for (int i = 0; i < 8; i++)
        h = h << 8 | md[i];
    const uint64_t slots = (ALD_UIDR_AUTO_END - ALD_UIDR_AUTO_FIRST) / ALD_UIDR_AUTO_STEP;
    return ALD_UIDR_AUTO_FIRST + h % slots * ALD_UIDR_AUTO_STEP;
}

/* The next slot's first id after `start`, wrapping round to the first
 * when a range of `count` no longer fits. */
static uint64_t next_slot(uint64_t start, uint64_t count)
{
    uint64_t s = start + ALD_UIDR_AUTO_STEP;
    return s + count > ALD_UIDR_AUTO_END ? ALD_UIDR_AUTO_FIRST : s;
}

/* With `spread` (as the system's sources have it) a picked range's search
 * starts at the state dir's own slot, so a slot another daemon gave up is
 * not every new daemon's first choice; a taken home slot moves it on. */
static void test_claim_spread(void **state_)
{
    (void)state_;
    char procs[PATH_MAX];
    path_of(procs, "proc-spread");
    mkdir(procs, 0755);
    struct ald_uidr_sources sp = src;
    sp.spread = 1;
    sp.proc_dir = procs;
    struct ald_uidr_claim a, b;
    const char *d1 = state("sp1"), *d2 = state("sp2");
    uint64_t h1 = home_of(d1), h2 = home_of(d2);
    assert_int_equal(ald_uidr_claim(&a, &sp, d1, 0, 200000, 60000), 0);
    assert_int_equal(a.start, h1);
    /* a process runs with an id of d2's home slot */
    char dir[PATH_MAX + 16], status[PATH_MAX + 32], text[256];
    snprintf(dir, sizeof(dir), "%s/4646", procs);
    mkdir(dir, 0755);
    snprintf(status, sizeof(status), "%s/status", dir);
    unsigned long long u = (unsigned long long)h2 + 5;
    snprintf(text, sizeof(text),
             "Name:\tsh\nState:\tS (sleeping)\nUid:\t%llu\t%llu\t%llu\t%llu\n"
             "Gid:\t%llu\t%llu\t%llu\t%llu\n",
             u, u, u, u, u, u, u, u);
    put(status, text);
    uint64_t want = next_slot(h2, 60000);
    if (want == h1)
        want = next_slot(want, 60000);
    assert_int_equal(ald_uidr_claim(&b, &sp, d2, 0, 200000, 60000), 0);
    assert_int_equal(b.start, want);
    ald_uidr_release(&b);
    ald_uidr_release(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subid_good),      cmocka_unit_test(test_subid_malformed),
        cmocka_unit_test(test_subid_clip),      cmocka_unit_test(test_passwd),
        cmocka_unit_test(test_status),          cmocka_unit_test(test_record),
        cmocka_unit_test(test_overlap),         cmocka_unit_test(test_pick),
        cmocka_unit_test(test_claim_explicit),  cmocka_unit_test(test_claim_auto),
        cmocka_unit_test(test_claim_records),   cmocka_unit_test(test_claim_run_dir),
        cmocka_unit_test(test_config_explicit), cmocka_unit_test(test_claim_spread),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
