/* fuzz_ctlmsg: the control-frame reader fed arbitrary bytes in arbitrary
 * chunk sizes (the first input byte picks the chunk size), as partial reads
 * on a non-blocking socket would deliver them. */
#include <stddef.h>
#include <stdint.h>

#include "airlock/ctlmsg.h"
#include "airlock/error.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ctl_reader r;
    if (size < 1)
        return 0;
    size_t chunk = (size_t)data[0] % 64 + 1;
    data++;
    size--;
    ctl_reader_init(&r);
    size_t off = 0;
    while (off < size) {
        size_t n = size - off < chunk ? size - off : chunk;
        size_t used;
        json_t *msg = NULL;
        int err = ctl_reader_feed(&r, data + off, n, &used, &msg);
        if (used == 0 || used > n)
            __builtin_trap();
        off += used;
        if (err == 0) {
            if (!msg || !*ctl_msg_type(msg))
                __builtin_trap();
            json_decref(msg);
        } else if (err == AL_ETOOBIG) {
            break; /* the stream cannot be resynchronised */
        }
    }
    ctl_reader_clear(&r);
    /* The body parser on its own, too. */
    json_t *msg = NULL;
    if (ctl_msg_parse(&msg, data, size) == 0)
        json_decref(msg);
    return 0;
}
