// SPDX-License-Identifier: LGPL-2.1-or-later
// EDGEMATRIX's stream config and its action rules: which events trigger which actions.
//   {"stream_id": "...", "action_rules": [{"rule_name": "...",
//     "and": [{"key": "probability", "operator": ">=", "value": 20}], "or": [],
//     "action": {"action_name": "record", "duration_in_seconds": 5, "max_duration_in_seconds": 60}}]}
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace emi::rules {

// A stream config that can't be used; the message names the source, the rule and the field.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Operator { kEqual, kNotEqual, kGreater, kGreaterOrEqual, kLess, kLessOrEqual };

struct Condition {
  std::string key;
  Operator op;
  nlohmann::json value;  // a number, a string or a boolean
  std::size_t key_index = 0;  // into StreamConfig::keys
};

struct RecordAction {
  double duration_seconds;      // before and after the event
  double max_duration_seconds;  // a clip that later events extend stops growing here
};

struct UploadAction {
  std::string delivery_stream_name;
  std::string access_key;  // empty: from the environment, as the AWS SDKs do
  std::string secret_key;
  std::string region;
  std::string endpoint;  // empty: https://firehose.<region>.amazonaws.com/
};

enum class ActionKind { kRecord, kUpload };

struct Rule {
  std::string name;
  std::vector<Condition> all_of;  // "and"
  std::vector<Condition> any_of;  // "or": ignored when empty
  ActionKind action;
  RecordAction record{};
  UploadAction upload;
  // As written, for the log of firings, with its secrets masked (masked_action).
  nlohmann::json action_json;
};

struct StreamConfig {
  std::string stream_id;
  std::vector<Rule> rules;
  // Every key the conditions name, once: an event's values are looked up once per key, not once
  // per condition.
  std::vector<std::string> keys;
  // Actions EDGEMATRIX delegates to its device agent (e.g. "line"): known, not run here.
  std::vector<std::string> skipped;
};

// `action` as it may be shown (firings in the output, bus messages, logs): an access key shows
// its last 4 characters only ("****WXYZ"), a secret key, session token or password not at all.
nlohmann::json masked_action(const nlohmann::json& action);

// Validates `config` (`source` names it in errors: a file path). Keys other than stream_id and
// action_rules are EDGEMATRIX's (stream_type, location, roi, ...) and are accepted as they are.
StreamConfig parse_stream_config(const nlohmann::json& config, const std::string& source);
// Reads and validates a stream config file.
StreamConfig load_stream_config(const std::string& path);
// `path` as messages may quote it: a value that is not a file path (the config's JSON text given
// in its place, keys and all) is described, never quoted.
std::string quotable_config_path(const std::string& path);

// Whether `condition` holds for `event`: numbers compare as numbers, strings as strings
// (so "N/A" is a string like any other); a missing key or values of different kinds make
// every operator but != false, and != true only for a present key.
bool holds(const Condition& condition, const nlohmann::json& event);
// Every "and" condition holds and, where "or" is not empty, at least one "or" condition.
bool fires(const Rule& rule, const nlohmann::json& event);

// An event's value of each of the config's keys (null pointer: absent), for evaluating many
// rules on one event.
using EventValues = std::vector<const nlohmann::json*>;
void look_up(const StreamConfig& config, const nlohmann::json& event, EventValues& values);
bool fires(const Rule& rule, const EventValues& values);

const char* spelling(Operator op);

}  // namespace emi::rules
