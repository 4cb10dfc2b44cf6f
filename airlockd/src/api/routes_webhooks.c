/* Route: the webhook delivery log (GET /v1/webhooks/deliveries?subject=ID). */
#include "request.h"

#include "airlockd/adapters/webhooks.h"

#include <jansson.h>

enum MHD_Result ald_route_webhook_deliveries(struct ald_req *r)
{
    struct ald_fault f = {0};
    json_t *list = NULL;
    if (ald_webhooks_list(r->d, ald_req_arg(r, "subject"), r->who.user, r->who.admin, &list, &f) <
        0)
        return ald_reply_fault(r, &f);
    return ald_reply_json(r, 200, json_pack("{s:o}", "deliveries", list));
}
