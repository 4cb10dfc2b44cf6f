/* Node-to-node request signing (peer.h, docs/cluster.md "Forwarding"). */
#include "airlockd/adapters/peer.h"
