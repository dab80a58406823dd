#include <gst/p2psp/splitter.h>
