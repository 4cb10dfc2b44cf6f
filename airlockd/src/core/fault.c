/* Refusals described for the client (fault.h). */
#include "airlockd/core/fault.h"

#include "airlock/error.h"

#include <stdarg.h>
#include <stdio.h>

int ald_fault_set(struct ald_fault *f, enum ald_fault_kind kind, const char *code,
                  const char *field, const char *fmt, ...)
{
    f->kind = kind;
    f->code = code;
    snprintf(f->field, sizeof(f->field), "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->message, sizeof(f->message), fmt, ap);
    va_end(ap);
    return AL_EINVAL;
}

int ald_fault_store(struct ald_fault *f, int err)
{
    if (err == AL_EAGAIN)
        return ald_fault_set(f, ALD_FAULT_UNAVAILABLE, "unavailable", NULL, "%s", al_error_last());
    return ald_fault_set(f, ALD_FAULT_INTERNAL, "internal", NULL, "%s", al_error_last());
}
