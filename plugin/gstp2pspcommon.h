/* gst-p2psp: element helpers both elements use (the checks and errors they
 * must word alike). */
#pragma once

#include <gst/gst.h>

#include <string>

namespace p2psp_gst {

/* An empty passphrase (open team) or one of a valid length: TRUE. Else posts
 * RESOURCE/SETTINGS "Invalid passphrase" on `element` and returns FALSE. */
bool check_passphrase(GstElement *element, const std::string &passphrase);

}  // namespace p2psp_gst
