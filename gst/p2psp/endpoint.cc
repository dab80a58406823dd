#include <gst/p2psp/endpoint.h>
