/* The credential store shared through the cluster's database
 * (docs/cluster.md "Credentials"). */
#include "airlockd/adapters/store_nodes.h"
