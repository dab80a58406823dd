/* gst-p2psp: the plugin entry point, registering both elements. PACKAGE
 * and VERSION come from the build (plugin/meson.build). */
#include <gst/gst.h>

#include "gstp2pspelements.h"

#ifndef GST_PACKAGE_NAME
#define GST_PACKAGE_NAME "gst-p2psp"
#endif
#ifndef GST_PACKAGE_ORIGIN
#define GST_PACKAGE_ORIGIN "Unknown package origin"
#endif

static gboolean plugin_init(GstPlugin *plugin) {
  gboolean ret = FALSE;
  /* One element failing to register must not hide the other. */
  ret |= GST_ELEMENT_REGISTER(p2pspsplittersink, plugin);
  ret |= GST_ELEMENT_REGISTER(p2pspsrc, plugin);
  return ret;
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, p2psp,
                  "P2PSP peer-to-peer live streaming", plugin_init, VERSION,
                  "LGPL", GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
