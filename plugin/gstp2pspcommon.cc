/* gst-p2psp: element helpers both elements use. */
#include "gstp2pspcommon.h"

#include <gst/p2psp/auth.h>

namespace p2psp_gst {

bool check_passphrase(GstElement *element, const std::string &passphrase) {
  if (passphrase.empty()) return true;
  auto problem = p2psp::auth::passphrase_problem(passphrase);
  if (!problem) return true;
  GST_ELEMENT_ERROR(element, RESOURCE, SETTINGS, ("Invalid passphrase"),
                    ("%s", problem->c_str()));
  return false;
}

}  // namespace p2psp_gst
