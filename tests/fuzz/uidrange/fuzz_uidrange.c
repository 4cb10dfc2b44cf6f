/* Fuzzes airlockd's uid-range parsers: the first byte picks the parser
 * (subuid/subgid, passwd, group, /proc status, /run record, kept range), the
 * rest is the file. Every input is parsed without reading past its end;
 * every range added lies in the 32-bit id space and is never empty; every
 * description is a terminated string; malformed lines are counted, never
 * fatal. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "airlockd/adapters/uidrange.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_set(const struct ald_idset *s, size_t len, const struct ald_uidr_bad *bad)
{
    for (size_t i = 0; i < s->n; i++) {
        const struct ald_idrange *r = &s->v[i];
        if (r->count == 0 || r->start >= ALD_UIDR_ID_END || r->count > ALD_UIDR_ID_END - r->start ||
            memchr(r->what, '\0', sizeof(r->what)) == NULL)
            __builtin_trap();
        /* what was added overlaps itself */
        if (ald_idset_overlap(s, r->start, r->count) == NULL)
            __builtin_trap();
    }
    /* one line gives at most two ids (passwd: uid and gid) */
    if (s->n + bad->count > 2 * (len + 1))
        __builtin_trap();
    if (bad->count && (bad->first_line == 0 || bad->first_line > len + 1))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1 || size > 65536)
        return 0;
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    struct ald_idset s = {0};
    struct ald_uidr_bad bad = {0, 0};
    switch (data[0] % 6) {
    case 0:
        if (ald_uidr_subid_parse(&s, "/etc/subuid", text, len, &bad) == 0)
            check_set(&s, len, &bad);
        break;
    case 1:
        if (ald_uidr_passwd_parse(&s, "/etc/passwd", text, len, &bad) == 0)
            check_set(&s, len, &bad);
        break;
    case 2:
        if (ald_uidr_group_parse(&s, "/etc/group", text, len, &bad) == 0)
            check_set(&s, len, &bad);
        break;
    case 3: {
        uint32_t ids[8];
        int dead = -1;
        (void)ald_uidr_status_parse(ids, &dead, text, len);
        if (dead != 0 && dead != 1)
            __builtin_trap();
        break;
    }
    case 4: {
        static struct ald_uidr_record rec;
        if (ald_uidr_record_parse(&rec, text, len) == 0 &&
            (rec.count == 0 || rec.start >= ALD_UIDR_ID_END || rec.pid < 1 ||
             rec.state_dir[0] != '/' || memchr(rec.state_dir, '\0', sizeof(rec.state_dir)) == NULL))
            __builtin_trap();
        break;
    }
    default: {
        uint64_t start, count;
        if (ald_uidr_saved_parse(&start, &count, text, len) == 0 &&
            (count == 0 || start + count > ALD_UIDR_ID_END))
            __builtin_trap();
        break;
    }
    }
    ald_idset_free(&s);
    return 0;
}
