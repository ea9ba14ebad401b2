// SPDX-License-Identifier: LGPL-2.1-or-later
// emoverlay: draws what the frame document says (objects, labels, results, counts) on the frame,
// in place.
#pragma once

#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

#define GST_TYPE_EM_OVERLAY (gst_em_overlay_get_type())
G_DECLARE_FINAL_TYPE(GstEmOverlay, gst_em_overlay, GST, EM_OVERLAY, GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE(emoverlay);

G_END_DECLS
