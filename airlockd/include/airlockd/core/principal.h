/* Who makes a request (the principal an API key stands for) and the audit
 * row of what was done. The store keeps both (adapters/store.h); core and
 * the api pass them around. */
#ifndef ALD_CORE_PRINCIPAL_H
#define ALD_CORE_PRINCIPAL_H

#include <stdint.h>

#define ALD_NAME_MAX 64

/* Who made a request: the key's user. */
struct ald_principal {
    char user[ALD_NAME_MAX];
    char key_id[24];
    int admin;
    int64_t max_sessions, max_memory_mb;
};

/* One audit row: a changing API call and its status. user, key_id and
 * session may be NULL. */
struct ald_audit_row {
    uint64_t time_ms;
    const char *user, *key_id, *method, *path;
    int status;
    const char *session;
};

#endif
