// SPDX-License-Identifier: LGPL-2.1-or-later
// empycustom: runs a user's Python program on each frame, in place, and stores what it returns
// as buffer metadata (EDGEMATRIX's EMPyCustom).
#pragma once

#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

#define GST_TYPE_EM_PY_CUSTOM (gst_em_py_custom_get_type())
G_DECLARE_FINAL_TYPE(GstEmPyCustom, gst_em_py_custom, GST, EM_PY_CUSTOM, GstBaseTransform)

#define GST_TYPE_EM_PY_CUSTOM_MODE (gst_em_py_custom_mode_get_type())
GType gst_em_py_custom_mode_get_type(void);

#define GST_TYPE_EM_PY_CUSTOM_ON_ERROR (gst_em_py_custom_on_error_get_type())
GType gst_em_py_custom_on_error_get_type(void);

GST_ELEMENT_REGISTER_DECLARE(empycustom);

G_END_DECLS
