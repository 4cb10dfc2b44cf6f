/* Fuzzes both parsers of the airlockd <-> airlock-init protocol as a stream:
 * the first byte picks the direction (even: init's messages as the daemon
 * reads them, odd: the daemon's requests as init reads them); the rest is
 * parsed message after message, as the readers do. Parsed messages are
 * re-encoded and must parse back to the same value. */
#include "sbs_proto.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *argv_buf[SBS_MAX_ARGS + 1], *envp_buf[SBS_MAX_ARGS + 1];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int to_init = data[0] & 1;
    data++;
    size--;
    size_t off = 0;
    while (off < size) {
        long n;
        if (to_init) {
            struct sbs_req r;
            n = sbs_req_parse(data + off, size - off, &r, argv_buf, envp_buf);
            if (n > 0 && (r.type == SBS_REQ_SPAWN || r.type == SBS_REQ_SPAWN_WATCHED ||
                          r.type == SBS_REQ_SPAWN_TTY)) {
                /* Strings are inside the message and NUL-terminated. */
                size_t total = strlen(r.cwd);
                for (uint32_t i = 0; i < r.argc; i++)
                    total += strlen(argv_buf[i]);
                for (uint32_t i = 0; i < r.envc; i++)
                    total += strlen(envp_buf[i]);
                if (total > (size_t)n || argv_buf[r.argc] || envp_buf[r.envc])
                    abort();
            }
            if (n > 0 && (r.type == SBS_REQ_SPAWN_TTY || r.type == SBS_REQ_RESIZE) &&
                (r.rows < 1 || r.rows > SBS_TTY_MAX_DIM || r.cols < 1 || r.cols > SBS_TTY_MAX_DIM))
                abort();
        } else {
            struct sbs_msg m, again;
            n = sbs_msg_parse(data + off, size - off, &m);
            if (n > 0) {
                unsigned char buf[64];
                long e = sbs_msg_encode(buf, sizeof(buf), &m);
                if (e != n || sbs_msg_parse(buf, (size_t)e, &again) != e ||
                    memcmp(&m, &again, sizeof(m)) != 0)
                    abort();
            }
        }
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    return 0;
}
