// SPDX-License-Identifier: LGPL-2.1-or-later
// emi-bench: per-frame overhead of `empycustom` (no-op script) and of a gst-python peer over
// `identity`, timed from PLAYING to EOS. See bench/README.md.
//
//   build/bench/emi-bench [--runs R] [--rounds K] [--frames-small N] [--frames-large N] ...
//
// Every variant runs in the same pipeline, which differs only in the element under test:
//   videotestsrc num-buffers=1 pattern=black ! video/x-raw,format=RGBA,width=W,height=H,
//   framerate=30/1 ! imagefreeze num-buffers=N ! identity ! <element> ! fakesink sync=false
// The pipeline is prerolled (PAUSED) before the clock starts, so element start-up (the Python
// interpreter, loading the script) is not counted; the preroll frame isn't counted either.
//
// Each variant runs in processes of its own (this program again, with --child), as it would under
// gst-launch-1.0: variants sharing a process would share GStreamer's pooled streaming threads, and
// with them the Python thread state empycustom keeps per thread, which the gst-python peer
// otherwise creates and destroys on every frame.
#include <dlfcn.h>
#include <gst/gst.h>
#include <sys/resource.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#ifndef EMI_BENCH_SOURCE_DIR
#error "EMI_BENCH_SOURCE_DIR must name bench/ in the source tree"
#endif
#ifndef EMI_BENCH_PLUGIN_DIR
#error "EMI_BENCH_PLUGIN_DIR must name the folder of libgstemi.so"
#endif
#ifndef EMI_BENCH_BUILD_DIR
#error "EMI_BENCH_BUILD_DIR must name build/bench"
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
  int runs = 2;    // timed runs per process
  int rounds = 5;  // processes per variant and size
  int warmup = 1;  // untimed runs per process, first
  int frames_small = 20000;
  int frames_large = 20000;
  std::vector<Size> sizes;  // empty: 640x360 and 1920x1080
  std::string module = std::string(EMI_BENCH_SOURCE_DIR) + "/noop.py";
  std::vector<Variant> variants;
  std::vector<std::string> only;  // names to run; empty: all
  bool verbose = false;
  bool breakdown = false;
  bool in_process = false;
  bool child = false;  // run the one variant and size given, print SAMPLE lines
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

// Marks a variant whose streaming thread gets a Python thread state that lives as long as the
// thread, before its first frame: what empycustom's GilGuard keeps per thread. Without one, every
// PyGILState_Ensure/Release pair in gst-python's vfunc dispatch creates and destroys a thread state
// (CPython 3.11 maps and unmaps its frame stack each time).
constexpr char kWarmPythonThread[] = "{warm-python-thread}";

GstPadProbeReturn keep_python_thread_state(GstPad*, GstPadProbeInfo*, gpointer) {
  // libpython is loaded by now (gst-python's loader made the element), with global symbols.
  using Ensure = int (*)();
  using SaveThread = void* (*)();
  auto ensure = reinterpret_cast<Ensure>(dlsym(RTLD_DEFAULT, "PyGILState_Ensure"));
  auto save_thread = reinterpret_cast<SaveThread>(dlsym(RTLD_DEFAULT, "PyEval_SaveThread"));
  if (ensure == nullptr || save_thread == nullptr) die("no libpython in the process");
  ensure();       // this thread's state, use count 1: never released, so never destroyed
  save_thread();  // but the GIL is let go
  return GST_PAD_PROBE_REMOVE;
}

Sample run_once(const Options& options, const Variant& variant, const Size& size) {
  std::string element = replace_all(
      replace_all(variant.element, "{module}", options.module), "{bench}", EMI_BENCH_SOURCE_DIR);
  const bool warm_python_thread = element.rfind(kWarmPythonThread, 0) == 0;
  if (warm_python_thread) element.erase(0, std::strlen(kWarmPythonThread));
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
  if (warm_python_thread) {
    GstElement* under_test = gst_bin_get_by_name(GST_BIN(pipeline), "under_test");
    GstPad* pad = gst_element_get_static_pad(under_test, "sink");
    gst_pad_add_probe(pad, GST_PAD_PROBE_TYPE_BUFFER, keep_python_thread_state, nullptr, nullptr);
    gst_object_unref(pad);
    gst_object_unref(under_test);
  }

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
    guint interval = 1;
    if (g_object_class_find_property(G_OBJECT_GET_CLASS(under_test), "process-interval"))
      g_object_get(under_test, "process-interval", &interval, nullptr);
    const guint64 expected = (static_cast<guint64>(size.frames) + interval - 1) / interval;
    if (errors != 0 || processed != expected) {
      die(variant.name + ": processed " + std::to_string(processed) + " frames of " +
          std::to_string(expected) + " expected, " + std::to_string(errors) + " errors");
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
      "  --runs R             timed runs per process (default 2)\n"
      "  --rounds K           processes per variant and size, run round-robin (default 5):\n"
      "                       medians are over R*K runs\n"
      "  --warmup W           untimed runs at the start of each process (default 1)\n"
      "  --frames-small N     frames per run at 640x360 (default 20000)\n"
      "  --frames-large N     frames per run at 1920x1080 (default 20000)\n"
      "  --size WxH:N         run this size with N frames instead of the two defaults (repeatable)\n"
      "  --module PATH        script for empycustom (default bench/noop.py)\n"
      "  --only NAME[,NAME]   run only these variants (identity always runs: it is the baseline)\n"
      "  --variant NAME=DESC  add a variant; DESC is the element in gst-launch syntax, {module}\n"
      "                       and {bench} expand to the script and bench/ (repeatable)\n"
      "  --breakdown          also run ablation variants and print where empycustom's time goes\n"
      "  --in-process         run every variant in this process, R*K runs round-robin (shares\n"
      "                       streaming threads between variants: flatters the gst-python peer)\n"
      "  --verbose            print each pipeline\n"
      "Built-in variants: identity, empycustom (`empycustom module={module}`), python-peer\n"
      "(`emipeer`, bench/python/emipeer.py through gst-python's plugin loader), peer-warm (the\n"
      "same, its streaming thread given a lasting Python thread state first: DESC prefix\n"
      "%s).\n", kWarmPythonThread);
}

Options parse_arguments(int argc, char** argv) {
  Options options;
  options.variants = {{"identity", "identity"},
                      {"empycustom", "empycustom module={module}"},
                      {"python-peer", "emipeer"},
                      {"peer-warm", std::string(kWarmPythonThread) + "emipeer"}};
  std::vector<Variant> child_variants;
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
    auto variant = [&]() -> Variant {
      const std::string text = value();
      const std::size_t equals = text.find('=');
      if (equals == std::string::npos || equals == 0) die(arg + " wants NAME=DESC, got " + text);
      return {text.substr(0, equals), text.substr(equals + 1)};
    };
    if (arg == "--runs") options.runs = std::max(1, number());
    else if (arg == "--rounds") options.rounds = std::max(1, number());
    else if (arg == "--warmup") options.warmup = number();
    else if (arg == "--frames-small") options.frames_small = std::max(2, number());
    else if (arg == "--frames-large") options.frames_large = std::max(2, number());
    else if (arg == "--module") options.module = value();
    else if (arg == "--verbose") options.verbose = true;
    else if (arg == "--breakdown") options.breakdown = true;
    else if (arg == "--in-process") options.in_process = true;
    else if (arg == "--child") {
      options.child = true;
      child_variants.push_back(variant());
    } else if (arg == "--size") {
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
      options.variants.push_back(variant());
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
  if (options.child) {
    options.variants = child_variants;
    return options;
  }
  if (options.breakdown) {
    // Each adds one piece of empycustom's per-frame work to the one before; see print_breakdown.
    options.variants.insert(options.variants.begin() + 1,
        {{"emi-no-call", "empycustom module={module} process-interval=4294967295"},
         {"emi-args0", "empycustom module={bench}/ablation/noop_args0.py"},
         {"emi-args1", "empycustom module={bench}/ablation/noop_args1.py"}});
    options.variants.push_back({"peer-empty", "emipeer work=false"});
    options.variants.push_back({"peer-warm-empty", std::string(kWarmPythonThread) + "emipeer work=false"});
  }
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

// Our plugin and bench/ (gst-python looks for bench/python/emipeer.py) first on the plugin path;
// EMI_BENCH_PLUGIN_DIR in the environment points at another build of libgstemi.so.
void set_plugin_path() {
  const gchar* plugin_dir = g_getenv("EMI_BENCH_PLUGIN_DIR");
  std::string path = plugin_dir != nullptr && *plugin_dir != '\0' ? plugin_dir : EMI_BENCH_PLUGIN_DIR;
  path += std::string(":") + EMI_BENCH_SOURCE_DIR;
  const gchar* existing = g_getenv("GST_PLUGIN_PATH");
  if (existing != nullptr && *existing != '\0') path += std::string(":") + existing;
  g_setenv("GST_PLUGIN_PATH", path.c_str(), TRUE);
  // A registry of our own: one shared with runs that see other plugin paths would be rebuilt.
  if (g_getenv("GST_REGISTRY") == nullptr)
    g_setenv("GST_REGISTRY", EMI_BENCH_BUILD_DIR "/emi-bench-registry.bin", TRUE);
  // pyenv's variables would point the embedded interpreter at a Python without NumPy.
  g_unsetenv("PYTHONHOME");
  g_setenv("PYTHONDONTWRITEBYTECODE", "1", TRUE);
}

// gst-python 1.22 + PyGObject warn once per Python element made ("The created element should be
// floating"): a known, harmless binding quirk that would bury the output.
void quiet_log(const gchar* domain, GLogLevelFlags level, const gchar* message, gpointer data) {
  if (message != nullptr && std::strstr(message, "should be floating") != nullptr) return;
  g_log_default_handler(domain, level, message, data);
}

std::string load_average() {
  gchar* text = nullptr;
  if (!g_file_get_contents("/proc/loadavg", &text, nullptr, nullptr)) return "?";
  std::string load(text);
  g_free(text);
  const std::size_t third_space = load.find(' ', load.find(' ', load.find(' ') + 1) + 1);
  return load.substr(0, third_space);
}

struct Figures {
  double wall = 0;      // median us/frame
  double wall_min = 0;  // fastest run
  double cpu = 0;       // median process CPU us/frame
};

void print_breakdown(const std::vector<Size>& sizes,
                     const std::vector<std::map<std::string, Figures>>& figures) {
  struct Step {
    const char* from;
    const char* to;
    const char* what;
  };
  static const Step steps[] = {
      {"identity", "emi-no-call",
       "frame document: build_document + write_document (process-interval skips the script)"},
      {"emi-no-call", "emi-args0",
       "script call: GIL, map + NumPy view, call, parse + place \"[]\" (process_ip())"},
      {"emi-args0", "emi-args1", "passing io_buffer (process_ip(io_buffer))"},
      {"emi-args1", "empycustom", "in_meta: the document converted to a dict (process_ip(io_buffer, in_meta))"},
      {"identity", "peer-warm-empty", "gst-python peer returning at once, warm thread state (vfunc dispatch)"},
      {"peer-warm-empty", "peer-warm", "gst-python peer's map + view + dict + call"},
      {"peer-warm", "python-peer", "gst-python peer: thread state made and destroyed per frame"},
      {"peer-warm-empty", "peer-empty", "  the same, measured on the peer that returns at once"},
  };
  std::printf("\nBreakdown (differences of medians, us/frame):\n");
  std::printf("%-10s %-82s %8s %8s\n", "size", "step", "wall", "cpu");
  for (std::size_t s = 0; s < sizes.size(); ++s) {
    const std::string size_name = std::to_string(sizes[s].width) + "x" + std::to_string(sizes[s].height);
    for (const Step& step : steps) {
      auto from = figures[s].find(step.from);
      auto to = figures[s].find(step.to);
      if (from == figures[s].end() || to == figures[s].end()) continue;
      std::printf("%-10s %-82s %8.2f %8.2f\n", size_name.c_str(), step.what,
                  to->second.wall - from->second.wall, to->second.cpu - from->second.cpu);
    }
  }
}

// Runs `variant` at `size` in a fresh process (this program with --child) and returns its samples.
std::vector<Sample> run_in_child(const Options& options, const char* self, const Variant& variant,
                                 const Size& size) {
  const std::string size_text =
      std::to_string(size.width) + "x" + std::to_string(size.height) + ":" + std::to_string(size.frames);
  const std::string variant_text = variant.name + "=" + variant.element;
  const std::string runs = std::to_string(options.runs);
  const std::string warmup = std::to_string(options.warmup);
  std::vector<const char*> argv = {self, "--child", variant_text.c_str(), "--size", size_text.c_str(),
                                   "--runs", runs.c_str(), "--warmup", warmup.c_str(),
                                   "--module", options.module.c_str()};
  if (options.verbose) argv.push_back("--verbose");
  argv.push_back(nullptr);
  gchar* out = nullptr;
  gint status = 0;
  GError* error = nullptr;
  if (!g_spawn_sync(nullptr, const_cast<gchar**>(argv.data()), nullptr, G_SPAWN_DEFAULT, nullptr,
                    nullptr, &out, nullptr, &status, &error))
    die(std::string("cannot run ") + self + ": " + error->message);
  if (!g_spawn_check_wait_status(status, nullptr)) die("the run of " + variant.name + " failed");
  std::vector<Sample> samples;
  std::istringstream lines(out);
  std::string word;
  for (std::string line; std::getline(lines, line);) {
    Sample sample{};
    std::istringstream fields(line);
    if (fields >> word >> sample.wall_us_per_frame >> sample.cpu_us_per_frame && word == "SAMPLE")
      samples.push_back(sample);
  }
  g_free(out);
  if (samples.size() != static_cast<std::size_t>(options.runs))
    die("the run of " + variant.name + " reported " + std::to_string(samples.size()) + " samples");
  return samples;
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse_arguments(argc, argv);
  set_plugin_path();
  g_log_set_handler("GStreamer", G_LOG_LEVEL_CRITICAL, quiet_log, nullptr);
  gst_init(nullptr, nullptr);
  for (const Variant& variant : options.variants) {
    std::string element = variant.element;
    if (element.rfind(kWarmPythonThread, 0) == 0) element.erase(0, std::strlen(kWarmPythonThread));
    const std::string factory = element.substr(0, element.find(' '));
    GstElementFactory* found = gst_element_factory_find(factory.c_str());
    if (found == nullptr) die("no element `" + factory + "` (variant " + variant.name + ")");
    gst_object_unref(found);
  }

  if (options.child) {
    // One variant, one size: warm-up runs, then timed ones, printed for the parent to read.
    const Variant& variant = options.variants.front();
    const Size& size = options.sizes.front();
    for (int run = 0; run < options.warmup; ++run) run_once(options, variant, size);
    for (int run = 0; run < options.runs; ++run) {
      const Sample sample = run_once(options, variant, size);
      std::printf("SAMPLE %.6f %.6f\n", sample.wall_us_per_frame, sample.cpu_us_per_frame);
    }
    gst_deinit();
    return 0;
  }

  const std::string load_before = load_average();
  std::vector<std::map<std::string, std::vector<Sample>>> samples(options.sizes.size());
  const int rounds = options.rounds;
  for (std::size_t s = 0; s < options.sizes.size(); ++s) {
    const Size& size = options.sizes[s];
    std::fprintf(stderr, "emi-bench: %dx%d RGBA, %d frames, %zu variants, %d %s of %d warm-up + %d "
                 "timed runs\n", size.width, size.height, size.frames, options.variants.size(),
                 rounds, options.in_process ? "rounds (in this process)" : "processes each",
                 options.warmup, options.runs);
    if (options.in_process) {
      for (int run = 0; run < options.warmup; ++run)
        for (const Variant& variant : options.variants) run_once(options, variant, size);
    }
    // Round-robin, so that drift in the machine's speed touches every variant alike.
    for (int round = 0; round < rounds; ++round) {
      for (const Variant& variant : options.variants) {
        std::vector<Sample>& kept = samples[s][variant.name];
        if (options.in_process) {
          for (int run = 0; run < options.runs; ++run) kept.push_back(run_once(options, variant, size));
        } else {
          for (const Sample& sample : run_in_child(options, "/proc/self/exe", variant, size)) kept.push_back(sample);
        }
      }
    }
  }

  std::vector<std::map<std::string, Figures>> figures(options.sizes.size());
  for (std::size_t s = 0; s < options.sizes.size(); ++s) {
    for (const Variant& variant : options.variants) {
      std::vector<double> wall;
      std::vector<double> cpu;
      for (const Sample& sample : samples[s][variant.name]) {
        wall.push_back(sample.wall_us_per_frame);
        cpu.push_back(sample.cpu_us_per_frame);
      }
      figures[s][variant.name] = {median(wall), *std::min_element(wall.begin(), wall.end()), median(cpu)};
    }
  }

  std::printf("\nemi-bench: median of %d runs per variant (%d %s of %d warm-up + %d timed), %u "
              "CPUs, load average %s before, %s after\n"
              "us/frame: wall time PLAYING->EOS / frames (fastest run in brackets); cpu: process CPU "
              "time / frames.\noverhead = variant - identity.\n\n",
              options.runs * rounds, rounds, options.in_process ? "rounds in one process" : "processes",
              options.warmup, options.runs, g_get_num_processors(), load_before.c_str(),
              load_average().c_str());
  std::printf("%-10s %-16s %7s %17s %10s %8s %10s\n", "size", "variant", "frames", "us/frame",
              "overhead", "cpu", "cpu ovh");
  for (std::size_t s = 0; s < options.sizes.size(); ++s) {
    const Size& size = options.sizes[s];
    const std::string size_name = std::to_string(size.width) + "x" + std::to_string(size.height);
    const Figures base = figures[s]["identity"];
    for (const Variant& variant : options.variants) {
      const Figures& f = figures[s][variant.name];
      char both[40];
      std::snprintf(both, sizeof both, "%.2f (%.2f)", f.wall, f.wall_min);
      std::printf("%-10s %-16s %7d %17s %10.2f %8.2f %10.2f\n", size_name.c_str(),
                  variant.name.c_str(), size.frames, both, f.wall - base.wall, f.cpu,
                  f.cpu - base.cpu);
    }
  }

  // The project's targets, judged on wall-clock overhead, where the variants they compare ran.
  std::printf("\nTargets (wall-clock overhead; cpu overhead in brackets):\n");
  auto overhead = [&](std::size_t s, const char* name, bool cpu) {
    const Figures& f = figures[s].at(name);
    const Figures& base = figures[s].at("identity");
    return cpu ? f.cpu - base.cpu : f.wall - base.wall;
  };
  auto has = [&](std::size_t s, const char* name) { return figures[s].count(name) != 0; };
  for (std::size_t s = 0; s < options.sizes.size(); ++s) {
    const Size& size = options.sizes[s];
    if (!has(s, "empycustom")) continue;
    const double emi = overhead(s, "empycustom", false);
    if (size.width == 640 && size.height == 360)
      std::printf("  empycustom overhead at 640x360: %.2f us/frame [%.2f] (target <= 5): %s\n", emi,
                  overhead(s, "empycustom", true), emi <= 5.0 ? "met" : "NOT MET");
    for (const char* peer : {"python-peer", "peer-warm"}) {
      if (!has(s, peer)) continue;
      const double ratio = overhead(s, peer, false) / emi;
      std::printf("  %dx%d: %s overhead / empycustom overhead = %.1fx [%.1fx] (target >= 10x): %s\n",
                  size.width, size.height, peer, ratio,
                  overhead(s, peer, true) / overhead(s, "empycustom", true),
                  ratio >= 10.0 ? "met" : "NOT MET");
    }
  }
  for (std::size_t s = 0; s < options.sizes.size(); ++s) {
    if (options.sizes[s].width != 1920 || options.sizes[s].height != 1080 || !has(s, "empycustom")) continue;
    for (std::size_t t = 0; t < options.sizes.size(); ++t) {
      if (options.sizes[t].width != 640 || options.sizes[t].height != 360 || !has(t, "empycustom")) continue;
      const double ratio = overhead(s, "empycustom", false) / overhead(t, "empycustom", false);
      std::printf("  empycustom overhead 1920x1080 / 640x360 = %.2f [%.2f] (target 0.80-1.20): %s\n",
                  ratio, overhead(s, "empycustom", true) / overhead(t, "empycustom", true),
                  std::fabs(ratio - 1.0) <= 0.2 ? "met" : "NOT MET");
    }
  }
  if (options.breakdown) print_breakdown(options.sizes, figures);
  gst_deinit();
  return 0;
}
