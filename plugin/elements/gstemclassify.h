// SPDX-License-Identifier: LGPL-2.1-or-later
// emclassify: an ONNX, torchvision or TorchScript classifier by name, on the whole frame or on each
// object (DLStreamer's object_classify, on empycustom).
#pragma once

#include "elements/gstemmodelbin.h"

G_BEGIN_DECLS

#define GST_TYPE_EM_CLASSIFY (gst_em_classify_get_type())
G_DECLARE_FINAL_TYPE(GstEmClassify, gst_em_classify, GST, EM_CLASSIFY, GstEmModelBin)

#define GST_TYPE_EM_CLASSIFY_REGION (gst_em_classify_region_get_type())
GType gst_em_classify_region_get_type(void);

GST_ELEMENT_REGISTER_DECLARE(emclassify);

G_END_DECLS
