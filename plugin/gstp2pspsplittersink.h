/* gst-p2psp: p2pspsplittersink, the splitter end of a P2PSP team. */
#pragma once

#include <gst/base/gstbasesink.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_P2PSP_SPLITTER_SINK (gst_p2psp_splitter_sink_get_type())
G_DECLARE_FINAL_TYPE(GstP2pspSplitterSink, gst_p2psp_splitter_sink, GST,
                     P2PSP_SPLITTER_SINK, GstBaseSink)

G_END_DECLS
