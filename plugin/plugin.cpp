#include <gst/gst.h>

#include "frame_document.h"
#include "gstemaimeta.h"
#include "gstemclassify.h"
#include "gstemdetect.h"
#include "gstemoverlay.h"
#include "gstempycustom.h"
#include "gstemtracker.h"

static gboolean plugin_init(GstPlugin* plugin) {
  // Python is not touched here: gst-plugin-scanner loads every plugin, and the interpreter
  // starts only when an element starts.
  emi::register_document_meta();
  return GST_ELEMENT_REGISTER(emaimeta, plugin) && GST_ELEMENT_REGISTER(empycustom, plugin) &&
         GST_ELEMENT_REGISTER(emoverlay, plugin) && GST_ELEMENT_REGISTER(emtracker, plugin) &&
         GST_ELEMENT_REGISTER(emdetect, plugin) && GST_ELEMENT_REGISTER(emclassify, plugin);
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, emi,
                  "Python and PyTorch programs inside video pipelines", plugin_init, EMI_VERSION,
                  "LGPL", "emi", "https://github.com/emi-video/emi")
