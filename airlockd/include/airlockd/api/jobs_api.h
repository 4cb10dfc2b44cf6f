/* What main.c needs of the api for jobs (core/jobs.h): the session spec
 * parser jobs use (struct ald_jobs_ops.create_req). */
#ifndef ALD_API_JOBS_API_H
#define ALD_API_JOBS_API_H

#include <stddef.h>

#include "airlockd/core/config.h"
#include "airlockd/core/fault.h"
#include "airlockd/core/requests.h"

/* ald_body_create() with its refusal as a core fault (400 -> invalid, 403
 * -> forbidden, 409 -> conflict). */
int ald_api_job_create_req(struct ald_create_req *out, const char *data, size_t len,
                           const struct ald_config *cfg, const char *user, struct ald_fault *f);

#endif
