// SPDX-License-Identifier: LGPL-2.1-or-later
#include <gst/gst.h>

#include "document/frame_document.h"
#include "elements/gstemaimeta.h"
#include "elements/gstemclassify.h"
#include "elements/gstemdetect.h"
#include "elements/gstemmediatime.h"
#include "elements/gstemoverlay.h"
#include "elements/gstempycustom.h"
#include "elements/gstemroi.h"
#include "elements/gstemtracker.h"

static gboolean plugin_init(GstPlugin* plugin) {
  // Python is not touched here: gst-plugin-scanner loads every plugin, and the interpreter
  // starts only when an element starts.
  emi::register_document_meta();
  return GST_ELEMENT_REGISTER(emaimeta, plugin) && GST_ELEMENT_REGISTER(empycustom, plugin) &&
         GST_ELEMENT_REGISTER(emoverlay, plugin) && GST_ELEMENT_REGISTER(emtracker, plugin) &&
         GST_ELEMENT_REGISTER(emdetect, plugin) && GST_ELEMENT_REGISTER(emclassify, plugin) &&
         GST_ELEMENT_REGISTER(emroi, plugin) && GST_ELEMENT_REGISTER(emmediatime, plugin);
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, emi,
                  "Python and PyTorch programs inside video pipelines", plugin_init, EMI_VERSION,
                  "LGPL", "emi", "https://github.com/emi-video/emi")
