/* libFuzzer: a byte stream read as WebSocket frames, the way airlockd's
 * terminal endpoint reads a client (first input byte: bit 0 picks client
 * frames, masked, or server frames, unmasked; bits 1-3 a payload limit).
 * A parsed frame must lie inside the input, re-encode to the same header,
 * and follow the fragment rules; a close payload parses without reading
 * past it. ASan catches any read beyond the copy of the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "airlock/wsframe.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int masked = data[0] & 1;
    size_t limit = (size_t)1 << (4 + ((data[0] >> 1) & 7) * 2); /* 16 .. 256 KiB */
    data++;
    size--;
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    struct al_ws_msgstate ms = {0};
    size_t off = 0;
    while (off < size) {
        struct al_ws_frame f;
        long n = al_ws_frame_parse(&f, buf + off, size - off, masked, limit);
        if (n <= 0)
            break;
        if ((size_t)n > size - off || f.header_len + f.payload_len != (size_t)n ||
            f.payload_len > limit || f.masked != masked)
            abort();
        unsigned char hdr[AL_WS_MAX_HEADER];
        long h = al_ws_header_encode(hdr, sizeof(hdr), f.fin, f.opcode, f.payload_len,
                                     f.masked ? f.mask : NULL);
        if (h != (long)f.header_len || memcmp(hdr, buf + off, (size_t)h) != 0)
            abort(); /* one spelling per frame */
        unsigned char *pl = buf + off + f.header_len;
        al_ws_unmask(pl, f.payload_len, f.mask, 0);
        if (f.opcode == AL_WS_CLOSE) {
            uint16_t code;
            (void)al_ws_close_parse(pl, f.payload_len, &code);
        } else if (f.opcode != AL_WS_PING && f.opcode != AL_WS_PONG) {
            int op = al_ws_msg_step(&ms, &f);
            if (op >= 0 && op != AL_WS_TEXT && op != AL_WS_BINARY)
                abort();
        }
        off += (size_t)n;
    }
    free(buf);
    return 0;
}
