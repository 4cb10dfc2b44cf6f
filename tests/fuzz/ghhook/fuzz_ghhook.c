/* Fuzzes the GitHub webhook's parsers (airlockd/api/ghhook.h): the first
 * byte picks the event (issue_comment, pull_request_review_comment, other),
 * the next 71 bytes are an X-Hub-Signature-256 header checked against the
 * rest (the body, with a fixed secret), and the body is parsed as that
 * event with the command "/airlock". Every input must be accepted, ignored
 * or refused, never crash or leak; an accepted comment's args lie inside
 * its text and the text starts (after white space) with the command. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "airlockd/api/ghhook.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const events[] = {"issue_comment", "pull_request_review_comment", "push",
                                         NULL};
    if (size < 1)
        return 0;
    const char *event = events[data[0] % 4];
    data++, size--;
    size_t hl = size < 71 ? size : 71;
    (void)ald_ghhook_sig_verify((const char *)data, hl, "secret", 6, data + hl, size - hl);
    struct ald_ghhook_comment c;
    char why[256];
    int res = ald_ghhook_parse(&c, why, sizeof(why), event, (const char *)data, size, "/airlock");
    if (res == ALD_GHHOOK_START) {
        size_t tl = strlen(c.text);
        if (c.args < c.text || c.args > c.text + tl || !strstr(c.text, "/airlock"))
            abort();
        ald_ghhook_comment_free(&c);
    } else if (memchr(why, '\0', sizeof(why)) == NULL) {
        abort();
    }
    return 0;
}
