// SPDX-License-Identifier: LGPL-2.1-or-later
// emdetect and emclassify: their properties, an error of its own for each bad setting (at start,
// or when caps are set for what only the dry run finds), and the issue's gst-launch line on a
// generated clip. Model files are real architectures with random weights, made for the suite.
#include <gst/gst.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <pybind11/eval.h>

#include <filesystem>
#include <string>
#include <vector>

#include "document/frame_document.h"
#include "gst_test_support.h"
#include "embed/python_host.h"

namespace emi::test {
namespace {

namespace py = pybind11;
using nlohmann::json;
using testing::HasSubstr;

// Runs Python statements in the interpreter the plugin shares; `folder` is a global there.
void run_python(const std::string& code, const std::string& folder) {
  python::ensure_started();
  python::GilGuard gil;
  try {
    py::dict scope;
    scope["__builtins__"] = py::module_::import("builtins");
    scope["folder"] = folder;
    py::exec(code, scope);
  } catch (py::error_already_set& error) {
    FAIL() << python::to_error(error, "making the model files").traceback();
  }
}

// The files of the suite, made once: real architectures with random weights.
constexpr char kMakeModelFiles[] = R"PY(
import os
import sys

import torch
import torchvision
from torchvision.models import ResNet50_Weights
from torchvision.models.detection import SSDLite320_MobileNet_V3_Large_Weights

sys.path.insert(0, os.environ["EMI_TEST_SCRIPTS"])
import model_fixtures as fixtures

# torch's cache for DEFAULT weights: only the detector of the issue's line is there.
os.environ["TORCH_HOME"] = os.path.join(folder, "torch-home")
detector = torchvision.models.detection.ssdlite320_mobilenet_v3_large
fixtures.cache_as_default_weights(os.environ["TORCH_HOME"], detector, fixtures.person_detector())
coco = SSDLite320_MobileNet_V3_Large_Weights.DEFAULT.meta["categories"]
fixtures.write_labels(f"{folder}/coco_91cl_bkgr.txt", coco)
fixtures.save_state_dict(f"{folder}/resnet50.pth", fixtures.eval_model(torchvision.models.resnet50))
fixtures.write_labels(f"{folder}/imagenet.txt", ResNet50_Weights.DEFAULT.meta["categories"])

squeezenet = fixtures.eval_model(torchvision.models.squeezenet1_1, num_classes=4)
fixtures.save_state_dict(f"{folder}/squeezenet4.pth", squeezenet)
fixtures.write_labels(f"{folder}/labels3.txt", fixtures.numbered_labels(3))
open(f"{folder}/empty.txt", "w").close()
with open(f"{folder}/not_a_model.pt", "w") as file:
    file.write("not a model\n")
# A TorchScript classifier of 2 classes that takes 8x8 images only.
torch.manual_seed(0)
fixed = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 2)).eval()
torch.jit.trace(fixed, torch.zeros(1, 3, 8, 8)).save(f"{folder}/fixed_8x8.pt")
for name, text in {"resize_8x8.json": '{"resize": [8, 8]}', "bad.json": '{"resize": 224,',
                   "unknown_key.json": '{"resise": 224}'}.items():
    with open(f"{folder}/{name}", "w") as file:
        file.write(text)
)PY";

class Models : public testing::Test {
 protected:
  static void SetUpTestSuite() {
    UniqueChars folder(g_dir_make_tmp("emi-models-XXXXXX", nullptr));
    ASSERT_NE(folder, nullptr);
    folder_ = folder.get();
    run_python(kMakeModelFiles, folder_);
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(folder_); }

  static std::string path(const std::string& name) { return folder_ + "/" + name; }

  static inline std::string folder_;
};

struct ExpectedError {
  GQuark domain;
  gint code;
  std::vector<std::string> message_parts;
};

ExpectedError not_found(std::vector<std::string> parts) {
  return {GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND, std::move(parts)};
}
ExpectedError unreadable(std::vector<std::string> parts) {
  return {GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_READ, std::move(parts)};
}
ExpectedError invalid(std::vector<std::string> parts) {
  return {GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS, std::move(parts)};
}

// The element fails to start with this error, and no other.
void expect_start_error(const std::string& description, const ExpectedError& expected) {
  SCOPED_TRACE(description);
  Watched watched(description);
  ASSERT_TRUE(watched.element);
  EXPECT_EQ(gst_element_set_state(watched.element.get(), GST_STATE_PAUSED), GST_STATE_CHANGE_FAILURE);
  std::vector<MessagePtr> errors = watched.take(GST_MESSAGE_ERROR);
  ASSERT_EQ(errors.size(), 1u);
  GError* error = nullptr;
  gst_message_parse_error(errors[0].get(), &error, nullptr);
  std::unique_ptr<GError, ReleaseWith<g_error_free>> owned(error);
  EXPECT_TRUE(g_error_matches(error, expected.domain, expected.code))
      << g_quark_to_string(error->domain) << " " << error->code << ": " << error->message;
  for (const std::string& part : expected.message_parts) EXPECT_THAT(error->message, HasSubstr(part));
}

struct PipelineRun {
  std::vector<GError*> errors;  // in the order posted
  std::vector<json> frames;     // frame records that reached the fakesink named "sink"
  bool eos = false;
  ~PipelineRun() {
    for (GError* error : errors) g_error_free(error);
  }
};

void keep_frame_record(GstElement*, GstBuffer* buffer, GstPad*, gpointer frames) {
  static_cast<std::vector<json>*>(frames)->push_back(frame_of(buffer));
}

// Runs `description` until EOS or the first error.
void run_pipeline(const std::string& description, PipelineRun& run) {
  UniqueElement pipeline = make_element(description);
  ASSERT_TRUE(pipeline);
  UniqueElement sink(gst_bin_get_by_name(GST_BIN(pipeline.get()), "sink"));
  if (sink) {
    g_object_set(sink.get(), "signal-handoffs", TRUE, nullptr);
    g_signal_connect(sink.get(), "handoff", G_CALLBACK(keep_frame_record), &run.frames);
  }
  BusPtr bus(gst_element_get_bus(pipeline.get()));
  gst_element_set_state(pipeline.get(), GST_STATE_PLAYING);
  const auto ends = static_cast<GstMessageType>(GST_MESSAGE_EOS | GST_MESSAGE_ERROR);
  MessagePtr message(gst_bus_timed_pop_filtered(bus.get(), 120 * GST_SECOND, ends));
  gst_element_set_state(pipeline.get(), GST_STATE_NULL);
  ASSERT_TRUE(message) << "no EOS or error within 2 minutes: " << description;
  run.eos = GST_MESSAGE_TYPE(message.get()) == GST_MESSAGE_EOS;
  while (message && GST_MESSAGE_TYPE(message.get()) == GST_MESSAGE_ERROR) {
    GError* error = nullptr;
    gst_message_parse_error(message.get(), &error, nullptr);
    run.errors.push_back(error);
    message.reset(gst_bus_pop_filtered(bus.get(), GST_MESSAGE_ERROR));
  }
}

std::string frames_of(int width, int height, int count = 1) {
  return "videotestsrc num-buffers=" + std::to_string(count) + " ! video/x-raw,format=RGBA,width=" +
         std::to_string(width) + ",height=" + std::to_string(height) + ",framerate=30/1 ! ";
}

TEST_F(Models, DocumentTheirPropertiesWithDefaults) {
  UniqueElement detect = make_element("emdetect");
  UniqueElement classify = make_element("emclassify");
  gdouble detect_threshold = 0, classify_threshold = 1;
  guint interval = 0, batch = 0, reclassify = 0;
  gchar* meta_key = nullptr;
  g_object_get(detect.get(), "threshold", &detect_threshold, "inference-interval", &interval, nullptr);
  g_object_get(classify.get(), "threshold", &classify_threshold, "batch-size", &batch, "reclassify-interval",
               &reclassify, "meta-key", &meta_key, nullptr);
  UniqueChars owned_key(meta_key);
  EXPECT_DOUBLE_EQ(detect_threshold, 0.5);
  EXPECT_DOUBLE_EQ(classify_threshold, 0.0);
  EXPECT_EQ(interval, 1u);
  EXPECT_EQ(batch, 8u);
  EXPECT_EQ(reclassify, 1u);
  EXPECT_STREQ(meta_key, "emclassify");
  auto* device = G_PARAM_SPEC_ENUM(g_object_class_find_property(G_OBJECT_GET_CLASS(detect.get()), "device"));
  EXPECT_STREQ(g_enum_get_value(device->enum_class, device->default_value)->value_nick, "auto");
  // call-timeout is the program's (the empycustom inside): set on the bin, read back from it.
  g_object_set(detect.get(), "call-timeout", 2.5, nullptr);
  gdouble call_timeout = 0;
  g_object_get(detect.get(), "call-timeout", &call_timeout, nullptr);
  EXPECT_DOUBLE_EQ(call_timeout, 2.5);
  UniqueElement program(gst_bin_get_by_name(GST_BIN(detect.get()), "program"));
  g_object_get(program.get(), "call-timeout", &call_timeout, nullptr);
  EXPECT_DOUBLE_EQ(call_timeout, 2.5);
  // A shared model's batches: by default a call takes what came while the model was busy (up to
  // 8 images) and nobody waits; the settings go to the session, and read back as set.
  for (GstElement* element : {detect.get(), classify.get()}) {
    guint max_batch_size = 0;
    gdouble max_batch_delay = -1;
    g_object_get(element, "max-batch-size", &max_batch_size, "max-batch-delay", &max_batch_delay, nullptr);
    EXPECT_EQ(max_batch_size, 8u);
    EXPECT_DOUBLE_EQ(max_batch_delay, 0.0);
    g_object_set(element, "max-batch-size", 4u, "max-batch-delay", 2.5, nullptr);
    g_object_get(element, "max-batch-size", &max_batch_size, "max-batch-delay", &max_batch_delay, nullptr);
    EXPECT_EQ(max_batch_size, 4u);
    EXPECT_DOUBLE_EQ(max_batch_delay, 2.5);
  }
  for (GstElement* element : {detect.get(), classify.get()}) {
    for (const char* name : {"model", "model-weights", "model-proc", "labels-file", "device", "threshold",
                             "inference-interval", "random-weights", "call-timeout", "max-batch-size",
                             "max-batch-delay"}) {
      GParamSpec* spec = g_object_class_find_property(G_OBJECT_GET_CLASS(element), name);
      ASSERT_NE(spec, nullptr) << name;
      EXPECT_GT(std::string(g_param_spec_get_blurb(spec)).size(), 20u) << name;
    }
  }
  for (const char* name :
       {"batch-size", "inference-region", "object-class", "reclassify-interval", "meta-key"})
    EXPECT_NE(g_object_class_find_property(G_OBJECT_GET_CLASS(classify.get()), name), nullptr) << name;
}

TEST_F(Models, NameTheBadModelAndTheCause) {
  expect_start_error("emclassify", invalid({"model is not set"}));
  expect_start_error("emclassify model=" + path("missing.pt"),
                     not_found({path("missing.pt"), "no such file"}));
  expect_start_error("emdetect model=" + path("not_a_model.pt"),
                     unreadable({path("not_a_model.pt"),
                                 "neither a TorchScript file nor a pickled torch model"}));
  expect_start_error("emclassify model=" + path("squeezenet4.pth"),
                     unreadable({path("squeezenet4.pth"), "weights only", "model-weights="}));
  expect_start_error("emclassify model=torchvision.models.squeezenet1_2",
                     invalid({"torchvision.models.squeezenet1_2",
                              "did you mean torchvision.models.squeezenet1_1"}));
  expect_start_error("emclassify model=torchvision.models.segmentation.fcn_resnet50",
                     invalid({"torchvision.models.segmentation.fcn_resnet50"}));
  expect_start_error("emdetect model=torchvision.models.squeezenet1_1 random-weights=true",
                     invalid({"torchvision.models.squeezenet1_1 is a classification model"}));
}

TEST_F(Models, NameTheBadWeightsAndTheCause) {
  const std::string squeezenet = "emclassify model=torchvision.models.squeezenet1_1";
  expect_start_error(squeezenet, not_found({"model-weights is not set", "SqueezeNet1_1_Weights.IMAGENET1K_V1",
                                            path("torch-home/hub/checkpoints/squeezenet1_1-b8a52dc0.pth"),
                                            "random-weights=true"}));
  expect_start_error(squeezenet + " model-weights=" + path("missing.pth"),
                     not_found({path("missing.pth"), "no such file"}));
  expect_start_error(squeezenet + " model-weights=" + path("not_a_model.pt"),
                     unreadable({"model-weights " + path("not_a_model.pt"), "not a file torch.save wrote"}));
  expect_start_error("emclassify model=torchvision.models.resnet18 model-weights=" + path("squeezenet4.pth"),
                     invalid({path("squeezenet4.pth"), "does not fit torchvision.models.resnet18"}));
  expect_start_error("emclassify model=" + path("fixed_8x8.pt") + " model-weights=" + path("squeezenet4.pth"),
                     invalid({path("squeezenet4.pth"), "only torchvision models take a state_dict"}));
}

TEST_F(Models, NameTheBadLabelsOrModelProcFileAndTheCause) {
  const std::string squeezenet =
      "emclassify model=torchvision.models.squeezenet1_1 model-weights=" + path("squeezenet4.pth");
  expect_start_error(squeezenet + " labels-file=" + path("missing.txt"),
                     not_found({path("missing.txt"), "no such file"}));
  expect_start_error(squeezenet + " labels-file=" + path("empty.txt"),
                     invalid({path("empty.txt"), "has no labels"}));
  expect_start_error(squeezenet + " labels-file=" + path("squeezenet4.pth"),
                     unreadable({path("squeezenet4.pth"), "not UTF-8 text"}));
  // The cached detector has COCO's 91 classes.
  expect_start_error("emdetect model=torchvision.models.detection.ssdlite320_mobilenet_v3_large "
                     "labels-file=" + path("labels3.txt"),
                     invalid({path("labels3.txt"), "has 3 labels", "91 classes"}));
  expect_start_error(squeezenet + " model-proc=" + path("missing.json"),
                     not_found({path("missing.json"), "no such file"}));
  expect_start_error(squeezenet + " model-proc=" + path("bad.json"),
                     unreadable({path("bad.json"), "is not JSON"}));
  expect_start_error(squeezenet + " model-proc=" + path("unknown_key.json"),
                     invalid({path("unknown_key.json"), "unknown keys resise"}));
}

TEST_F(Models, RefuseCudaWhenTorchHasNone) {
  bool has_cuda = false;
  {
    python::GilGuard gil;
    has_cuda = py::module_::import("torch").attr("cuda").attr("is_available")().cast<bool>();
  }
  if (has_cuda) GTEST_SKIP() << "this machine has CUDA";
  expect_start_error("emclassify model=torchvision.models.squeezenet1_1 random-weights=true device=cuda",
                     invalid({"device cuda", "no CUDA device"}));
}

// What only running the model shows fails when caps are set, before the first frame.
TEST_F(Models, FailAtCapsWhenTheDryRunFails) {
  PipelineRun wrong_size;
  run_pipeline(frames_of(48, 48) + "emclassify inference-region=full-frame model=" + path("fixed_8x8.pt") +
                   " ! fakesink name=sink",
               wrong_size);
  ASSERT_FALSE(wrong_size.errors.empty());
  GError* error = wrong_size.errors[0];
  EXPECT_TRUE(g_error_matches(error, GST_CORE_ERROR, GST_CORE_ERROR_NEGOTIATION)) << error->message;
  EXPECT_THAT(error->message, HasSubstr("model " + path("fixed_8x8.pt") + " fails on 48x48 RGBA frames"));
  EXPECT_THAT(error->message, HasSubstr("RuntimeError"));
  EXPECT_TRUE(wrong_size.frames.empty());

  PipelineRun wrong_labels;
  run_pipeline(frames_of(48, 48) + "emclassify inference-region=full-frame model=" + path("fixed_8x8.pt") +
                   " model-proc=" + path("resize_8x8.json") + " labels-file=" + path("labels3.txt") +
                   " ! fakesink name=sink",
               wrong_labels);
  ASSERT_FALSE(wrong_labels.errors.empty());
  error = wrong_labels.errors[0];
  EXPECT_TRUE(g_error_matches(error, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_SETTINGS)) << error->message;
  EXPECT_THAT(error->message, HasSubstr(path("labels3.txt") + " has 3 labels, but model " +
                                        path("fixed_8x8.pt") + " has 2 classes"));
  EXPECT_TRUE(wrong_labels.frames.empty());
}

TEST_F(Models, ClassifyTheFrameWithAModelThatTakesItsSize) {
  PipelineRun run;
  run_pipeline(frames_of(48, 48, 3) + "emclassify inference-region=full-frame meta-key=scene model=" +
                   path("fixed_8x8.pt") + " model-proc=" + path("resize_8x8.json") + " ! fakesink name=sink",
               run);
  ASSERT_TRUE(run.eos);
  ASSERT_EQ(run.frames.size(), 3u);
  for (const json& frame : run.frames) {
    ASSERT_EQ(frame["scene"].size(), 1u) << frame;
    const json& result = frame["scene"][0];
    EXPECT_THAT(result["predicted_class"].get<std::string>(), testing::AnyOf("0", "1"));
    EXPECT_GE(result["probability"].get<double>(), 50.0);  // the top of two classes
    EXPECT_LE(result["probability"].get<double>(), 100.0);
  }
}

// The issue's line, with a generated clip and random weights: the cached "DEFAULT" detector finds
// one person per frame, emtracker gives it an id, and emclassify names it from the labels.
TEST_F(Models, RunTheIssuesLineOnAGeneratedClip) {
  const std::string clip = path("in.mp4");
  PipelineRun encode;
  run_pipeline("videotestsrc num-buffers=4 pattern=ball ! "
               "video/x-raw,format=I420,width=96,height=96,framerate=30/1 ! "
               "x264enc speed-preset=ultrafast ! mp4mux ! filesink location=" + clip,
               encode);
  ASSERT_TRUE(encode.eos);

  PipelineRun run;
  run_pipeline("filesrc location=" + clip + " ! decodebin ! videoconvert ! "
               "emdetect model=torchvision.models.detection.ssdlite320_mobilenet_v3_large labels-file=" +
                   path("coco_91cl_bkgr.txt") + " ! emtracker ! "
               "emclassify model=torchvision.models.resnet50 model-weights=" + path("resnet50.pth") +
                   " labels-file=" + path("imagenet.txt") + " ! emoverlay ! fakesink name=sink",
               run);
  for (GError* error : run.errors) ADD_FAILURE() << error->message;
  ASSERT_TRUE(run.eos);
  ASSERT_EQ(run.frames.size(), 4u);
  for (std::size_t index = 0; index < run.frames.size(); ++index) {
    const json& objects = run.frames[index]["object"];
    ASSERT_EQ(objects.size(), 1u) << run.frames[index];
    const json& person = objects[0];
    EXPECT_EQ(person["obj_label"], "person");
    EXPECT_EQ(person["class_id"], 1);
    EXPECT_GT(person["confidence"].get<double>(), 0.99);
    EXPECT_NEAR(person["rect_params"]["left"].get<double>(), 2.4, 0.01);
    EXPECT_NEAR(person["rect_params"]["width"].get<double>(), 91.2, 0.01);
    EXPECT_EQ(person["object_id"], index < 2 ? -1 : 1);  // emtracker's min-hits is 3
    const json& result = person["emclassify"];
    EXPECT_FALSE(result["predicted_class"].get<std::string>().empty());
    EXPECT_GT(result["probability"].get<double>(), 0.0);
  }
}

}  // namespace
}  // namespace emi::test
