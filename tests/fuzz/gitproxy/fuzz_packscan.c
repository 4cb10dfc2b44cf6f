/* libFuzzer: the streaming pack scanner (airlock/gp_packscan.h) on arbitrary
 * bytes, fed whole and in two pieces (split where the first byte says): it
 * must never crash, and the two feedings must agree on the outcome. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "airlock/gp_packscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run(const uint8_t *data, size_t size, size_t split, uint64_t *off)
{
    gp_packscan *ps;
    if (gp_packscan_new(&ps, NULL, 1) < 0)
        return -100;
    int rc = gp_packscan_feed(ps, data, split);
    if (rc >= 0)
        rc = gp_packscan_feed(ps, data + split, size - split);
    if (rc >= 0) {
        int fin = gp_packscan_finish(ps);
        rc = fin < 0 ? fin : rc;
    }
    enum gp_obj_type type;
    const char *what;
    *off = 0;
    if (rc == 1 && !gp_packscan_hit(ps, off, &type, &what))
        abort();
    if (rc == 0)
        gp_packscan_descends(ps, "0123456789012345678901234567890123456789",
                             "abcdefabcdefabcdefabcdefabcdefabcdefabcd");
    gp_packscan_free(ps);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t split = size > 1 ? data[0] % size : 0;
    uint64_t o1, o2;
    int a = run(data + 1, size - 1, 0, &o1);
    int b = run(data + 1, size - 1, split > 0 ? split - 1 : 0, &o2);
    /* the same outcome whatever the feeding: a hit at the same entry, or
     * the same refusal */
    if (a != b || (a == 1 && o1 != o2))
        abort();
    return 0;
}
