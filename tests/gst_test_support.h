// SPDX-License-Identifier: LGPL-2.1-or-later
// Small helpers shared by the GStreamer tests: owned harnesses, frames, a bus to read.
#pragma once

#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "document/frame_document.h"
#include "common/gst_ptr.h"

namespace emi::test {

using HarnessPtr = std::unique_ptr<GstHarness, ReleaseWith<gst_harness_teardown>>;
using BusPtr = std::unique_ptr<GstBus, ReleaseWith<gst_object_unref>>;
using MessagePtr = std::unique_ptr<GstMessage, ReleaseWith<gst_message_unref>>;

inline std::string script(const std::string& name) {
  const char* folder = std::getenv("EMI_TEST_SCRIPTS");
  return std::string(folder != nullptr ? folder : "tests/scripts") + "/" + name;
}

// An element made from a gst-launch style description ("empycustom module=... mode=detect").
inline UniqueElement make_element(const std::string& description) {
  GError* error = nullptr;
  GstElement* element = gst_parse_launch(description.c_str(), &error);
  if (error != nullptr) {
    ADD_FAILURE() << "cannot make " << description << ": " << error->message;
    g_error_free(error);
  }
  return UniqueElement(element);
}

// The element with a bus of its own, so its warnings and errors can be read.
struct Watched {
  UniqueElement element;
  BusPtr bus;
  std::vector<MessagePtr> unread;

  explicit Watched(const std::string& description)
      : element(make_element(description)), bus(gst_bus_new()) {
    gst_element_set_bus(element.get(), bus.get());
  }
  ~Watched() {
    if (element) gst_element_set_state(element.get(), GST_STATE_NULL);
  }
  // Messages of `type` posted so far, oldest first; others stay for a later take().
  std::vector<MessagePtr> take(GstMessageType type) {
    while (GstMessage* message = gst_bus_pop(bus.get())) unread.emplace_back(message);
    std::vector<MessagePtr> taken;
    for (auto it = unread.begin(); it != unread.end();) {
      if (GST_MESSAGE_TYPE(it->get()) & type) {
        taken.push_back(std::move(*it));
        it = unread.erase(it);
      } else {
        ++it;
      }
    }
    return taken;
  }
  guint64 counter(const char* name) {
    guint64 value = 0;
    g_object_get(element.get(), name, &value, nullptr);
    return value;
  }
};

// GError message and debug text of an error or warning message.
struct MessageText {
  std::string message;
  std::string debug;
};
inline MessageText text_of(GstMessage* message) {
  GError* error = nullptr;
  gchar* debug = nullptr;
  if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR) gst_message_parse_error(message, &error, &debug);
  else gst_message_parse_warning(message, &error, &debug);
  std::unique_ptr<GError, ReleaseWith<g_error_free>> owned_error(error);
  UniqueChars owned_debug(debug);
  return MessageText{error != nullptr ? error->message : "", debug != nullptr ? debug : ""};
}

// A harness around a watched element, with caps for `format` at width x height.
inline HarnessPtr harness_for(Watched& watched, const std::string& format, int width, int height) {
  HarnessPtr harness(gst_harness_new_with_element(watched.element.get(), "sink", "src"));
  gst_harness_set_src_caps_str(harness.get(),
      ("video/x-raw,format=" + format + ",width=" + std::to_string(width) +
       ",height=" + std::to_string(height) + ",framerate=30/1").c_str());
  return harness;
}

// A frame whose byte i holds (i * 7 + seed) % 251: known content, no two rows alike.
inline GstBuffer* patterned_frame(const std::string& format, int width, int height, int seed = 0,
                                  GstClockTime pts = 0) {
  GstVideoInfo info;
  gst_video_info_set_format(&info, gst_video_format_from_string(format.c_str()), width, height);
  GstBuffer* buffer = gst_buffer_new_allocate(nullptr, GST_VIDEO_INFO_SIZE(&info), nullptr);
  GstMapInfo map;
  gst_buffer_map(buffer, &map, GST_MAP_WRITE);
  for (gsize i = 0; i < map.size; ++i) map.data[i] = static_cast<guint8>((i * 7 + seed) % 251);
  gst_buffer_unmap(buffer, &map);
  GST_BUFFER_PTS(buffer) = pts;
  GST_BUFFER_DURATION(buffer) = GST_SECOND / 30;
  return buffer;
}

inline nlohmann::json frame_of(GstBuffer* buffer) {
  std::optional<nlohmann::json> document = read_document(buffer);
  if (!document) {
    ADD_FAILURE() << "buffer has no frame document";
    return nlohmann::json::object();
  }
  return (*document)["frame"][0];
}

// Pushes one frame and pulls what came out (nullptr when the element dropped it).
inline UniqueBuffer push_and_pull(GstHarness* harness, GstBuffer* frame) {
  const GstFlowReturn flow = gst_harness_push(harness, frame);
  if (flow != GST_FLOW_OK) return UniqueBuffer();
  return UniqueBuffer(gst_harness_try_pull(harness));
}

}  // namespace emi::test
