#include <gst/p2psp/reorder.h>
