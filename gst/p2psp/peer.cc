#include <gst/p2psp/peer.h>
