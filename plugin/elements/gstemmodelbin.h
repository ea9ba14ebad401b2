// SPDX-License-Identifier: LGPL-2.1-or-later
// GstEmModelBin: what emdetect and emclassify share. A bin around an empycustom that runs the
// ready program of the emi.inference Python package on packed RGB frames (no copy before the
// model's pre-processing). The bin opens the model session when it starts, so a bad model,
// weights, labels or model-proc file is an error then, and makes the session's dry run on a
// blank frame of the negotiated size when caps are set.
#pragma once

#include <gst/gst.h>

#include <nlohmann/json.hpp>

#define GST_TYPE_EM_MODEL_BIN (gst_em_model_bin_get_type())
G_DECLARE_DERIVABLE_TYPE(GstEmModelBin, gst_em_model_bin, GST, EM_MODEL_BIN, GstBin)

struct _GstEmModelBinClass {
  GstBinClass parent_class;

  // The session's task: "detect" or "classify".
  const char* task;
  // Called when the element starts: adds the subclass's own settings to the session's and sets
  // how `program` (the empycustom) places results (its mode and meta-key).
  void (*configure)(GstEmModelBin* self, nlohmann::json& session_settings, GstElement* program);
};

#define GST_TYPE_EM_MODEL_DEVICE (gst_em_model_device_get_type())
GType gst_em_model_device_get_type(void);

#define GST_TYPE_EM_MODEL_BACKEND (gst_em_model_backend_get_type())
GType gst_em_model_backend_get_type(void);
