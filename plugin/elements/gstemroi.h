// SPDX-License-Identifier: LGPL-2.1-or-later
// emroi: regions of interest of a stream. Drops the frame document's objects whose box
// bottom-centre is outside every region, and (draw=true) outlines the regions on the frame.
#pragma once

#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

#define GST_TYPE_EM_ROI (gst_em_roi_get_type())
G_DECLARE_FINAL_TYPE(GstEmRoi, gst_em_roi, GST, EM_ROI, GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE(emroi);

G_END_DECLS
