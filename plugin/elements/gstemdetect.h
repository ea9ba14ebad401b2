// SPDX-License-Identifier: LGPL-2.1-or-later
// emdetect: an ONNX, torchvision or TorchScript detector by name; its detections become the frame
// document's objects (DLStreamer's object_detect, on empycustom).
#pragma once

#include "elements/gstemmodelbin.h"

G_BEGIN_DECLS

#define GST_TYPE_EM_DETECT (gst_em_detect_get_type())
G_DECLARE_FINAL_TYPE(GstEmDetect, gst_em_detect, GST, EM_DETECT, GstEmModelBin)

GST_ELEMENT_REGISTER_DECLARE(emdetect);

G_END_DECLS
