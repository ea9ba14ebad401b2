// SPDX-License-Identifier: LGPL-2.1-or-later
#include "actions/action_rules.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <optional>
#include <sstream>

#include "actions/record/clip_window.h"
#include "actions/upload/aws_credentials.h"

namespace emi::rules {
namespace {

using nlohmann::json;

constexpr double kDefaultMaxDurationSeconds = 60;

struct OperatorSpelling {
  const char* text;
  Operator op;
};
constexpr OperatorSpelling kOperators[] = {
    {"=", Operator::kEqual},         {"==", Operator::kEqual},      {"!=", Operator::kNotEqual},
    {">", Operator::kGreater},       {">=", Operator::kGreaterOrEqual}, {"<", Operator::kLess},
    {"<=", Operator::kLessOrEqual},
};

// Builds messages like: streams/x.json: action_rules[1] ("Upload"): and[0].operator: ...
class Where {
 public:
  Where(std::string source, std::size_t index, std::string name)
      : prefix_(std::move(source) + ": action_rules[" + std::to_string(index) + "]" +
                (name.empty() ? "" : " (\"" + name + "\")")) {}
  [[noreturn]] void fail(const std::string& field, const std::string& problem) const {
    throw ConfigError(prefix_ + ": " + field + ": " + problem);
  }

 private:
  std::string prefix_;
};

const char* kind_of(const json& value) {
  if (value.is_number()) return "a number";
  if (value.is_string()) return "a string";
  if (value.is_boolean()) return "a boolean";
  if (value.is_null()) return "null";
  if (value.is_array()) return "an array";
  return "an object";
}

Operator parse_operator(const json& value, const Where& where, const std::string& field) {
  if (!value.is_string()) where.fail(field, std::string("must be a string, not ") + kind_of(value));
  const std::string text = value.get<std::string>();
  for (const OperatorSpelling& spelling : kOperators) {
    if (text == spelling.text) return spelling.op;
  }
  where.fail(field, "unknown operator \"" + text + "\" (use =, ==, !=, >, >=, < or <=)");
}

std::vector<Condition> parse_conditions(const json& rule, const char* group, const Where& where) {
  std::vector<Condition> conditions;
  const auto found = rule.find(group);
  if (found == rule.end() || found->is_null()) return conditions;
  if (!found->is_array()) where.fail(group, std::string("must be a list of conditions, not ") + kind_of(*found));
  for (std::size_t index = 0; index < found->size(); ++index) {
    const json& item = (*found)[index];
    const std::string field = std::string(group) + "[" + std::to_string(index) + "]";
    if (!item.is_object()) where.fail(field, std::string("must be an object, not ") + kind_of(item));
    for (const char* key : {"key", "operator", "value"}) {
      if (!item.contains(key)) where.fail(field, std::string("missing \"") + key + "\"");
    }
    if (!item["key"].is_string() || item["key"].get<std::string>().empty())
      where.fail(field + ".key", "must be a non-empty string");
    const json& value = item["value"];
    if (!value.is_number() && !value.is_string() && !value.is_boolean())
      where.fail(field + ".value", std::string("must be a number, a string or a boolean, not ") + kind_of(value));
    conditions.push_back({item["key"].get<std::string>(), parse_operator(item["operator"], where, field + ".operator"), value});
  }
  return conditions;
}

double positive_seconds(const json& action, const char* key, const Where& where, std::optional<double> fallback) {
  const auto found = action.find(key);
  if (found == action.end() || found->is_null()) {
    if (fallback) return *fallback;
    where.fail(std::string("action.") + key, "missing");
  }
  if (!found->is_number() || !(found->get<double>() > 0) || !std::isfinite(found->get<double>()))
    where.fail(std::string("action.") + key, "must be a positive number of seconds");
  // The pre-roll ring holds this much video (its memory: record/clip_recorder.h).
  if (found->get<double>() > record::kMaxRecordSeconds)
    where.fail(std::string("action.") + key, found->dump() + " s is more than the " +
                                                 std::to_string(static_cast<int>(record::kMaxRecordSeconds)) +
                                                 " s a clip may ask for");
  return found->get<double>();
}

// Keys whose values are never shown, and keys shown masked; compared without case.
bool is_secret(const std::string& key) {
  const std::string lower = [&] {
    std::string text = key;
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    return text;
  }();
  for (const char* word : {"secret", "token", "password"}) {
    if (lower.find(word) != std::string::npos) return true;
  }
  return false;
}

bool is_access_key(const std::string& key) {
  std::string lower = key;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  return lower == "accesskey" || lower == "accesskeyid" || lower == "access_key_id";
}

std::string optional_string(const json& action, const char* key, const Where& where) {
  const auto found = action.find(key);
  if (found == action.end() || found->is_null()) return {};
  if (!found->is_string()) where.fail(std::string("action.") + key, std::string("must be a string, not ") + kind_of(*found));
  return found->get<std::string>();
}

// Parses the action into `rule`; false for an action EDGEMATRIX delegates to its device agent.
bool parse_action(const json& action, Rule& rule, const Where& where) {
  if (!action.is_object()) where.fail("action", std::string("must be an object, not ") + kind_of(action));
  const std::string name = optional_string(action, "action_name", where);
  if (name.empty()) where.fail("action.action_name", "missing");
  rule.action_json = masked_action(action);
  if (name == "record") {
    rule.action = ActionKind::kRecord;
    rule.record.duration_seconds = positive_seconds(action, "duration_in_seconds", where, std::nullopt);
    rule.record.max_duration_seconds =
        positive_seconds(action, "max_duration_in_seconds", where, kDefaultMaxDurationSeconds);
    if (rule.record.duration_seconds > rule.record.max_duration_seconds)
      where.fail("action.duration_in_seconds",
                 json(rule.record.duration_seconds).dump() + " s is more than max_duration_in_seconds (" +
                     json(rule.record.max_duration_seconds).dump() + " s)");
    return true;
  }
  if (name == "upload") {
    rule.action = ActionKind::kUpload;
    rule.upload.delivery_stream_name = optional_string(action, "deliveryStreamName", where);
    if (rule.upload.delivery_stream_name.empty()) where.fail("action.deliveryStreamName", "missing");
    rule.upload.access_key = optional_string(action, "accessKey", where);
    rule.upload.secret_key = optional_string(action, "secretKey", where);
    rule.upload.region = optional_string(action, "region", where);
    rule.upload.endpoint = optional_string(action, "endpoint", where);
    return true;
  }
  if (name == "line" || name == "email") return false;
  where.fail("action.action_name", "unknown action \"" + name + "\" (record or upload)");
}

bool same_kind(const json& a, const json& b) {
  return (a.is_number() && b.is_number()) || (a.is_string() && b.is_string()) ||
         (a.is_boolean() && b.is_boolean());
}

template <typename T>
bool compare(Operator op, const T& left, const T& right) {
  switch (op) {
    case Operator::kEqual: return left == right;
    case Operator::kNotEqual: return left != right;
    case Operator::kGreater: return left > right;
    case Operator::kGreaterOrEqual: return left >= right;
    case Operator::kLess: return left < right;
    case Operator::kLessOrEqual: return left <= right;
  }
  return false;
}

}  // namespace

json masked_action(const json& action) {
  if (!action.is_object()) return action;
  json masked = json::object();
  for (const auto& [key, value] : action.items()) {
    if (is_secret(key)) {
      if (!value.is_null() && value != "") masked[key] = "(hidden)";
      else masked[key] = value;
    } else if (is_access_key(key) && value.is_string() && !value.get_ref<const std::string&>().empty()) {
      masked[key] = aws::mask_access_key(value.get_ref<const std::string&>());
    } else {
      masked[key] = value;
    }
  }
  return masked;
}

StreamConfig parse_stream_config(const json& config, const std::string& source) {
  if (!config.is_object()) throw ConfigError(source + ": a stream config is a JSON object");
  StreamConfig parsed;
  if (const auto id = config.find("stream_id"); id != config.end() && !id->is_null()) {
    if (id->is_string()) parsed.stream_id = id->get<std::string>();
    else if (id->is_number_integer()) parsed.stream_id = std::to_string(id->get<long long>());
    else throw ConfigError(source + ": stream_id: must be a string");
  }
  const auto rules = config.find("action_rules");
  if (rules == config.end() || rules->is_null()) return parsed;
  if (!rules->is_array()) throw ConfigError(source + ": action_rules: must be a list of rules");
  for (std::size_t index = 0; index < rules->size(); ++index) {
    const json& item = (*rules)[index];
    if (!item.is_object()) throw ConfigError(source + ": action_rules[" + std::to_string(index) + "]: must be an object");
    Rule rule;
    const auto name = item.find("rule_name");
    if (name != item.end() && name->is_string()) rule.name = name->get<std::string>();
    const Where where(source, index, rule.name);
    if (rule.name.empty()) where.fail("rule_name", "missing");
    rule.all_of = parse_conditions(item, "and", where);
    rule.any_of = parse_conditions(item, "or", where);
    const auto action = item.find("action");
    if (action == item.end()) where.fail("action", "missing");
    for (std::vector<Condition>* group : {&rule.all_of, &rule.any_of}) {
      for (Condition& condition : *group) {
        const auto known = std::find(parsed.keys.begin(), parsed.keys.end(), condition.key);
        condition.key_index = static_cast<std::size_t>(known - parsed.keys.begin());
        if (known == parsed.keys.end()) parsed.keys.push_back(condition.key);
      }
    }
    if (parse_action(*action, rule, where)) parsed.rules.push_back(std::move(rule));
    else parsed.skipped.push_back(rule.name + " (" + item["action"]["action_name"].get<std::string>() + ")");
  }
  return parsed;
}

std::string quotable_config_path(const std::string& path) {
  constexpr std::size_t kLongestPath = 4096;  // PATH_MAX
  const bool json_text = path.find_first_of("{}\"\n") != std::string::npos;
  if (!json_text && path.size() <= kLongestPath) return path;
  return "stream-config (not a file path: " + std::to_string(path.size()) + " characters)";
}

StreamConfig load_stream_config(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw ConfigError(quotable_config_path(path) + ": can't open the stream config");
  std::stringstream text;
  text << file.rdbuf();
  json config;
  try {
    config = json::parse(text.str());
  } catch (const json::parse_error& error) {
    // nlohmann's message quotes the text it last read, which may be inside a secret key: only
    // where and what kind of error is said.
    std::string what = error.what();
    what = what.substr(0, what.find("; last read"));
    if (const auto position = what.find("parse error"); position != std::string::npos) what = what.substr(position);
    throw ConfigError(path + ": not valid JSON: " + what);
  }
  return parse_stream_config(config, path);
}

// Whether `condition` holds for `value` (null: the event has no such key).
bool holds_for(const Condition& condition, const json* found) {
  if (found == nullptr) return false;
  const json& value = *found;
  if (!same_kind(value, condition.value)) return condition.op == Operator::kNotEqual;
  if (value.is_number()) return compare(condition.op, value.get<double>(), condition.value.get<double>());
  if (value.is_string())
    return compare(condition.op, value.get_ref<const std::string&>(), condition.value.get_ref<const std::string&>());
  return compare(condition.op, value.get<bool>(), condition.value.get<bool>());
}

bool holds(const Condition& condition, const json& event) {
  const auto found = event.find(condition.key);
  return holds_for(condition, found != event.end() ? &*found : nullptr);
}

bool fires(const Rule& rule, const json& event) {
  for (const Condition& condition : rule.all_of) {
    if (!holds(condition, event)) return false;
  }
  if (rule.any_of.empty()) return true;
  for (const Condition& condition : rule.any_of) {
    if (holds(condition, event)) return true;
  }
  return false;
}

void look_up(const StreamConfig& config, const json& event, EventValues& values) {
  values.assign(config.keys.size(), nullptr);
  if (!event.is_object()) return;
  for (std::size_t index = 0; index < config.keys.size(); ++index) {
    const auto found = event.find(config.keys[index]);
    if (found != event.end()) values[index] = &*found;
  }
}

bool fires(const Rule& rule, const EventValues& values) {
  for (const Condition& condition : rule.all_of) {
    if (!holds_for(condition, values[condition.key_index])) return false;
  }
  if (rule.any_of.empty()) return true;
  for (const Condition& condition : rule.any_of) {
    if (holds_for(condition, values[condition.key_index])) return true;
  }
  return false;
}

const char* spelling(Operator op) {
  for (const OperatorSpelling& entry : kOperators) {
    if (entry.op == op) return entry.text;
  }
  return "?";
}

}  // namespace emi::rules
