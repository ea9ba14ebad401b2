// SPDX-License-Identifier: LGPL-2.1-or-later
// emtracker: IOU tracking of the frame document's objects: ids, track start/end and duration,
// counts and line crossings.
#pragma once

#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

#define GST_TYPE_EM_TRACKER (gst_em_tracker_get_type())
G_DECLARE_FINAL_TYPE(GstEmTracker, gst_em_tracker, GST, EM_TRACKER, GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE(emtracker);

G_END_DECLS
