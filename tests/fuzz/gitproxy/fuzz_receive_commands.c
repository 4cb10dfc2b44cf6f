/* libFuzzer: the head of a receive-pack request (commands, capabilities,
 * push options), plus ref-name validation of every parsed ref. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "airlock/gp_receive.h"
#include "airlock/gp_refname.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gp_receive r;
    if (gp_receive_parse(&r, (const char *)data, size) != 0)
        return 0;
    if (r.head_len > size || r.ncmds > GP_RECEIVE_MAX_CMDS)
        abort();
    for (size_t i = 0; i < r.ncmds; i++) {
        (void)gp_refname_valid(r.cmds[i].ref, strlen(r.cmds[i].ref));
        (void)gp_oid_is_zero(r.cmds[i].new_oid);
    }
    (void)gp_receive_has_cap(&r, "report-status");
    gp_receive_clear(&r);
    return 0;
}
