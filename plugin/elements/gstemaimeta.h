// SPDX-License-Identifier: LGPL-2.1-or-later
// emaimeta: the frame document out as signals (JSON lines, bus messages), the app's signal
// callback, the stream config's action rules, and their record and upload actions.
#pragma once

#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

#define GST_TYPE_EM_AI_META (gst_em_ai_meta_get_type())
G_DECLARE_FINAL_TYPE(GstEmAiMeta, gst_em_ai_meta, GST, EM_AI_META, GstBaseTransform)

GST_ELEMENT_REGISTER_DECLARE(emaimeta);

G_END_DECLS
