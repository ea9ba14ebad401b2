// SPDX-License-Identifier: LGPL-2.1-or-later
// emmediatime: the time of each frame of a recorded source as the movie's own (its recording
// date-time tag, else the run's start, plus the frame's running time), for the frame document.
#pragma once

#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

#define GST_TYPE_EM_MEDIA_TIME (gst_em_media_time_get_type())
G_DECLARE_FINAL_TYPE(GstEmMediaTime, gst_em_media_time, GST, EM_MEDIA_TIME, GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE(emmediatime);

G_END_DECLS
