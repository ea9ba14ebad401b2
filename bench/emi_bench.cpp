// emi-bench: per-frame overhead of `empycustom` (no-op script) and of a gst-python peer over
// `identity`, measured in-process from PLAYING to EOS. See bench/README.md.
//
//   build/bench/emi-bench [--runs R] [--frames-small N] [--frames-large N] ...
//
// Every variant runs in the same pipeline, which differs only in the element under test:
//   videotestsrc num-buffers=1 pattern=black ! video/x-raw,format=RGBA,width=W,height=H,
//   framerate=30/1 ! imagefreeze num-buffers=N ! identity ! <element> ! fakesink sync=false
// The pipeline is prerolled (PAUSED) before the clock starts, so element start-up (the Python
// interpreter, loading the script) is not counted; the preroll frame isn't counted either.
#include <gst/gst.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <map>
#include <string>
#include <vector>

#ifndef EMI_BENCH_SOURCE_DIR
#error "EMI_BENCH_SOURCE_DIR must name bench/ in the source tree"
#endif
#ifndef EMI_BENCH_PLUGIN_DIR
#error "EMI_BENCH_PLUGIN_DIR must name the folder of libgstemi.so"
#endif

namespace {

struct Variant {
  std::string name;
  std::string element;  // the element under test, gst-launch syntax; {module} and {bench} expand
};

struct Size {
  int width;
  int height;
  int frames;
};

struct Options {
  int runs = 7;
  int warmup = 1;
  int frames_small = 20000;
  int frames_large = 5000;
  std::vector<Size> sizes;  // empty: 640x360 and 1920x1080
  std::string module = std::string(EMI_BENCH_SOURCE_DIR) + "/noop.py";
  std::vector<Variant> variants;
  std::vector<std::string> only;  // names to run; empty: all
  bool verbose = false;
};

struct Sample {
  double wall_us_per_frame;
  double cpu_us_per_frame;
};

double now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

double cpu_ns() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1e9 +
         (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1e3;
}

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
  return text;
}

[[noreturn]] void die(const std::string& message) {
  std::fprintf(stderr, "emi-bench: %s\n", message.c_str());
  std::exit(1);
}

// Pops messages until one of `types`; reports warnings and errors on the way.
GstMessage* wait_for(GstBus* bus, GstMessageType types, const std::string& what) {
  for (;;) {
    GstMessage* message = gst_bus_timed_pop_filtered(
        bus, 600 * GST_SECOND,
        static_cast<GstMessageType>(types | GST_MESSAGE_ERROR | GST_MESSAGE_WARNING));
    if (message == nullptr) die("timed out waiting for " + what);
    if (GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR ||
        GST_MESSAGE_TYPE(message) == GST_MESSAGE_WARNING) {
      GError* error = nullptr;
      gchar* debug = nullptr;
      const bool fatal = GST_MESSAGE_TYPE(message) == GST_MESSAGE_ERROR;
      if (fatal) gst_message_parse_error(message, &error, &debug);
      else gst_message_parse_warning(message, &error, &debug);
      std::fprintf(stderr, "emi-bench: %s from %s: %s\n%s\n", fatal ? "ERROR" : "warning",
                   GST_OBJECT_NAME(GST_MESSAGE_SRC(message)), error->message,
                   debug != nullptr ? debug : "");
      g_clear_error(&error);
      g_free(debug);
      gst_message_unref(message);
      if (fatal) die("pipeline failed while waiting for " + what);
      continue;
    }
    return message;
  }
}

Sample run_once(const Options& options, const Variant& variant, const Size& size) {
  const std::string element = replace_all(
      replace_all(variant.element, "{module}", options.module), "{bench}", EMI_BENCH_SOURCE_DIR);
  const std::string description =
      "videotestsrc num-buffers=1 pattern=black ! video/x-raw,format=RGBA,width=" +
      std::to_string(size.width) + ",height=" + std::to_string(size.height) +
      ",framerate=30/1 ! imagefreeze num-buffers=" + std::to_string(size.frames) +
      " ! identity ! " + element + " name=under_test ! fakesink sync=false";
  if (options.verbose) std::fprintf(stderr, "emi-bench: %s\n", description.c_str());
  GError* error = nullptr;
  GstElement* pipeline = gst_parse_launch(description.c_str(), &error);
  if (pipeline == nullptr || error != nullptr)
    die("cannot build `" + description + "`: " + (error != nullptr ? error->message : "?"));
  GstBus* bus = gst_element_get_bus(pipeline);

  // Preroll: start() of every element (Python start-up, loading the script) and the first frame.
  if (gst_element_set_state(pipeline, GST_STATE_PAUSED) == GST_STATE_CHANGE_FAILURE) {
    gst_message_unref(wait_for(bus, GST_MESSAGE_ERROR, "preroll"));
    die("cannot pause " + variant.name);
  }
  gst_message_unref(wait_for(bus, GST_MESSAGE_ASYNC_DONE, "preroll of " + variant.name));

  const double cpu0 = cpu_ns();
  const double t0 = now_ns();
  gst_element_set_state(pipeline, GST_STATE_PLAYING);
  gst_message_unref(wait_for(bus, GST_MESSAGE_EOS, "EOS of " + variant.name));
  const double t1 = now_ns();
  const double cpu1 = cpu_ns();

  // empycustom counts what it did: every frame must have reached the script without error.
  GstElement* under_test = gst_bin_get_by_name(GST_BIN(pipeline), "under_test");
  if (under_test != nullptr && g_object_class_find_property(G_OBJECT_GET_CLASS(under_test), "processed")) {
    guint64 processed = 0;
    guint64 errors = 0;
    g_object_get(under_test, "processed", &processed, "errors", &errors, nullptr);
    if (errors != 0 || processed != static_cast<guint64>(size.frames)) {
      die(variant.name + ": processed " + std::to_string(processed) + " frames of " +
          std::to_string(size.frames) + ", " + std::to_string(errors) + " errors");
    }
  }
  if (under_test != nullptr) gst_object_unref(under_test);

  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(bus);
  gst_object_unref(pipeline);
  const int timed_frames = size.frames - 1;  // the preroll frame went through before t0
  return {(t1 - t0) / 1e3 / timed_frames, (cpu1 - cpu0) / 1e3 / timed_frames};
}

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

void usage() {
  std::printf(
      "usage: emi-bench [options]\n"
      "  --runs R             timed runs per variant and size, median reported (default 7)\n"
      "  --warmup W           untimed runs per variant and size first (default 1)\n"
      "  --frames-small N     frames per run at 640x360 (default 20000)\n"
      "  --frames-large N     frames per run at 1920x1080 (default 5000)\n"
      "  --size WxH:N         run this size with N frames instead of the two defaults (repeatable)\n"
      "  --module PATH        script for empycustom (default bench/noop.py)\n"
      "  --only NAME[,NAME]   run only these variants (identity always runs: it is the baseline)\n"
      "  --variant NAME=DESC  add a variant; DESC is the element in gst-launch syntax, {module}\n"
      "                       and {bench} expand to the script and bench/ (repeatable)\n"
      "  --verbose            print each pipeline\n"
      "Built-in variants: identity, empycustom (`empycustom module={module}`), python-peer\n"
      "(`emipeer`, bench/python/emipeer.py through gst-python's plugin loader).\n");
}

Options parse_arguments(int argc, char** argv) {
  Options options;
  options.variants = {{"identity", "identity"},
                      {"empycustom", "empycustom module={module}"},
                      {"python-peer", "emipeer"}};
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die(arg + " needs a value");
      return argv[++i];
    };
    auto number = [&]() {
      const std::string text = value();
      char* end = nullptr;
      const long n = std::strtol(text.c_str(), &end, 10);
      if (end == text.c_str() || *end != '\0' || n < 0) die(arg + ": not a number: " + text);
      return static_cast<int>(n);
    };
    if (arg == "--runs") options.runs = std::max(1, number());
    else if (arg == "--warmup") options.warmup = number();
    else if (arg == "--frames-small") options.frames_small = std::max(2, number());
    else if (arg == "--frames-large") options.frames_large = std::max(2, number());
    else if (arg == "--module") options.module = value();
    else if (arg == "--verbose") options.verbose = true;
    else if (arg == "--size") {
      Size size{};
      const std::string text = value();
      if (std::sscanf(text.c_str(), "%dx%d:%d", &size.width, &size.height, &size.frames) != 3 ||
          size.frames < 2)
        die("--size wants WxH:N, got " + text);
      options.sizes.push_back(size);
    } else if (arg == "--only") {
      std::string list = value();
      for (std::size_t start = 0; start <= list.size();) {
        std::size_t end = list.find(',', start);
        if (end == std::string::npos) end = list.size();
        if (end > start) options.only.push_back(list.substr(start, end - start));
        start = end + 1;
      }
    } else if (arg == "--variant") {
      const std::string text = value();
      const std::size_t equals = text.find('=');
      if (equals == std::string::npos || equals == 0) die("--variant wants NAME=DESC, got " + text);
      options.variants.push_back({text.substr(0, equals), text.substr(equals + 1)});
    } else if (arg == "--help" || arg == "-h") {
      usage();
      std::exit(0);
    } else {
      usage();
      die("unknown argument " + arg);
    }
  }
  if (options.sizes.empty())
    options.sizes = {{640, 360, options.frames_small}, {1920, 1080, options.frames_large}};
  if (!options.only.empty()) {
    std::vector<Variant> kept;
    for (const Variant& variant : options.variants) {
      if (variant.name == "identity" ||
          std::find(options.only.begin(), options.only.end(), variant.name) != options.only.end())
        kept.push_back(variant);
    }
    options.variants = kept;
  }
  return options;
}

// Our plugin and bench/ (gst-python looks for bench/python/emipeer.py) first on the plugin path.
void set_plugin_path() {
  const gchar* existing = g_getenv("GST_PLUGIN_PATH");
  std::string path = std::string(EMI_BENCH_PLUGIN_DIR) + ":" + EMI_BENCH_SOURCE_DIR;
  if (existing != nullptr && *existing != '\0') path += std::string(":") + existing;
  g_setenv("GST_PLUGIN_PATH", path.c_str(), TRUE);
  // pyenv's variables would point the embedded interpreter at a Python without NumPy.
  g_unsetenv("PYTHONHOME");
  g_setenv("PYTHONDONTWRITEBYTECODE", "1", TRUE);
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse_arguments(argc, argv);
  set_plugin_path();
  gst_init(nullptr, nullptr);
  for (const Variant& variant : options.variants) {
    const std::string factory = variant.element.substr(0, variant.element.find(' '));
    GstElementFactory* found = gst_element_factory_find(factory.c_str());
    if (found == nullptr) die("no element `" + factory + "` (variant " + variant.name + ")");
    gst_object_unref(found);
  }

  // results[size][variant] = samples
  std::vector<std::map<std::string, std::vector<Sample>>> results(options.sizes.size());
  for (std::size_t s = 0; s < options.sizes.size(); ++s) {
    const Size& size = options.sizes[s];
    std::fprintf(stderr, "emi-bench: %dx%d RGBA, %d frames, %d warm-up + %d timed runs of %zu variants\n",
                 size.width, size.height, size.frames, options.warmup, options.runs,
                 options.variants.size());
    for (int run = 0; run < options.warmup; ++run)
      for (const Variant& variant : options.variants) run_once(options, variant, size);
    // Round-robin, so that drift in the machine's speed touches every variant alike.
    for (int run = 0; run < options.runs; ++run)
      for (const Variant& variant : options.variants)
        results[s][variant.name].push_back(run_once(options, variant, size));
  }

  std::printf("\nPer-frame time, median of %d runs (min in brackets); overhead = variant - identity\n"
              "(wall time PLAYING->EOS / frames; cpu = process CPU time / frames)\n\n",
              options.runs);
  std::printf("%-10s %-14s %8s %18s %12s %10s\n", "size", "variant", "frames", "us/frame",
              "overhead us", "cpu us");
  std::vector<std::map<std::string, double>> overhead(options.sizes.size());
  for (std::size_t s = 0; s < options.sizes.size(); ++s) {
    const Size& size = options.sizes[s];
    const std::string size_name = std::to_string(size.width) + "x" + std::to_string(size.height);
    double baseline = 0;
    for (const Variant& variant : options.variants) {
      const std::vector<Sample>& samples = results[s][variant.name];
      std::vector<double> wall;
      std::vector<double> cpu;
      for (const Sample& sample : samples) {
        wall.push_back(sample.wall_us_per_frame);
        cpu.push_back(sample.cpu_us_per_frame);
      }
      const double med = median(wall);
      const double low = *std::min_element(wall.begin(), wall.end());
      if (variant.name == "identity") baseline = med;
      overhead[s][variant.name] = med - baseline;
      char both[32];
      std::snprintf(both, sizeof both, "%.2f (%.2f)", med, low);
      std::printf("%-10s %-14s %8d %18s %12.2f %10.2f\n", size_name.c_str(), variant.name.c_str(),
                  size.frames, both, med - baseline, median(cpu));
    }
  }

  // The project's targets, where the variants they compare were run.
  std::printf("\n");
  auto has = [&](std::size_t s, const char* name) { return overhead[s].count(name) != 0; };
  for (std::size_t s = 0; s < options.sizes.size(); ++s) {
    const Size& size = options.sizes[s];
    if (!has(s, "empycustom")) continue;
    const double emi = overhead[s]["empycustom"];
    if (size.width == 640 && size.height == 360)
      std::printf("empycustom overhead at 640x360: %.2f us/frame (target <= 5): %s\n", emi,
                  emi <= 5.0 ? "met" : "NOT MET");
    if (has(s, "python-peer")) {
      const double ratio = overhead[s]["python-peer"] / emi;
      std::printf("%dx%d: python-peer overhead / empycustom overhead = %.1fx (target >= 10x): %s\n",
                  size.width, size.height, ratio, ratio >= 10.0 ? "met" : "NOT MET");
    }
  }
  for (std::size_t s = 0; s < options.sizes.size(); ++s) {
    if (options.sizes[s].width != 1920 || !has(s, "empycustom")) continue;
    for (std::size_t t = 0; t < options.sizes.size(); ++t) {
      if (options.sizes[t].width != 640 || !has(t, "empycustom")) continue;
      const double ratio = overhead[s]["empycustom"] / overhead[t]["empycustom"];
      std::printf("empycustom overhead 1920x1080 / 640x360 = %.2f (target within 20%%: 0.80-1.20): %s\n",
                  ratio, std::fabs(ratio - 1.0) <= 0.2 ? "met" : "NOT MET");
    }
  }
  gst_deinit();
  return 0;
}
