/* placeholder */
#include "tt_worker.h"
static int ch_start(struct np_worker *w)
{
    (void)w;
    return -1;
}
static int ch_open(struct np_worker *w, struct np_half_err *e)
{
    (void)w;
    (void)e;
    return -1;
}
static int ch_req_head(struct np_worker *w, const struct np_tt_req *r, uint8_t f, uint64_t l)
{
    (void)w;
    (void)r;
    (void)f;
    (void)l;
    return -1;
}
static int ch_body(struct np_worker *w, const char *d, size_t l)
{
    (void)w;
    (void)d;
    (void)l;
    return -1;
}
static int ch_body_end(struct np_worker *w)
{
    (void)w;
    return -1;
}
static void ch_abort(struct np_worker *w, const char *r)
{
    (void)w;
    (void)r;
}
static int ch_response(struct np_worker *w, const struct np_tt_req *r, bool *c, bool *u,
                       uint64_t *used, struct np_half_err *e)
{
    (void)w;
    (void)r;
    (void)c;
    (void)u;
    (void)used;
    (void)e;
    return -1;
}
static void ch_relay(struct np_worker *w)
{
    (void)w;
}
static void ch_close(struct np_worker *w)
{
    (void)w;
}
const struct np_half_ops np_half_channel = {
    .start = ch_start,
    .open = ch_open,
    .req_head = ch_req_head,
    .body = ch_body,
    .body_end = ch_body_end,
    .abort = ch_abort,
    .response = ch_response,
    .relay = ch_relay,
    .close = ch_close,
};
