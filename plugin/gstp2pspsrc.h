/* gst-p2psp: p2pspsrc, a peer of a P2PSP team as a live GStreamer source. */
#pragma once

#include <gst/base/gstpushsrc.h>
#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_P2PSP_SRC (gst_p2psp_src_get_type())
G_DECLARE_FINAL_TYPE(GstP2pspSrc, gst_p2psp_src, GST, P2PSP_SRC, GstPushSrc)

G_END_DECLS
