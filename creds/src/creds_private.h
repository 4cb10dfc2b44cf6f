/* Internal helpers shared by creds/ sources. */
#ifndef CREDS_PRIVATE_H
#define CREDS_PRIVATE_H

#include "airlock/creds_store.h"

#endif
