/* gst-p2psp: element registration shared by the plugin entry. */
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

GST_ELEMENT_REGISTER_DECLARE(p2pspsplittersink);
GST_ELEMENT_REGISTER_DECLARE(p2pspsrc);

G_END_DECLS
