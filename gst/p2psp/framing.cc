#include <gst/p2psp/framing.h>
