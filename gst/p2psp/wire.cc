#include <gst/p2psp/wire.h>
