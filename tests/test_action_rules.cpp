// SPDX-License-Identifier: LGPL-2.1-or-later
// Stream config validation, rule semantics (with the seed's two rules) and the default events.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>

#include "actions/action_engine.h"
#include "actions/action_rules.h"

namespace emi::rules {
namespace {

using nlohmann::json;

// The seed's "EMI Torch Imagenet Yolo IOU Counter" stream config, as users have it.
const json kImagenetStream = json::parse(R"({
  "stream_id": "torch_imagenet", "stream_type": "file", "location": "movie.mp4",
  "action_rules": [
    {"rule_name": "Recording",
     "and": [{"key": "probability", "operator": ">", "value": 20}], "or": [],
     "action": {"action_name": "record", "duration_in_seconds": 5, "max_duration_in_seconds": 60}},
    {"rule_name": "Upload to AWS Kinesis Firehose",
     "and": [{"key": "tracking_ended_time", "operator": "!=", "value": "N/A"},
             {"key": "tracking_duration_in_seconds", "operator": ">=", "value": 1.3}],
     "or": [],
     "action": {"action_name": "upload", "deliveryStreamName": "trafficStream",
                "accessKey": "", "secretKey": "", "region": ""}}]})");

std::string error_of(const json& config) {
  try {
    parse_stream_config(config, "streams/s.json");
  } catch (const ConfigError& error) {
    return error.what();
  }
  return "";
}

TEST(StreamConfig, ParsesTheSeedsRules) {
  const StreamConfig config = parse_stream_config(kImagenetStream, "s.json");
  EXPECT_EQ(config.stream_id, "torch_imagenet");
  ASSERT_EQ(config.rules.size(), 2u);
  EXPECT_EQ(config.rules[0].action, ActionKind::kRecord);
  EXPECT_DOUBLE_EQ(config.rules[0].record.duration_seconds, 5);
  EXPECT_DOUBLE_EQ(config.rules[0].record.max_duration_seconds, 60);
  EXPECT_EQ(config.rules[1].action, ActionKind::kUpload);
  EXPECT_EQ(config.rules[1].upload.delivery_stream_name, "trafficStream");
  EXPECT_EQ(config.rules[1].all_of.size(), 2u);
  EXPECT_EQ(config.rules[1].all_of[0].op, Operator::kNotEqual);
}

TEST(StreamConfig, MaxDurationDefaultsToSixtySeconds) {
  json config = kImagenetStream;
  config["action_rules"][0]["action"].erase("max_duration_in_seconds");
  EXPECT_DOUBLE_EQ(parse_stream_config(config, "s.json").rules[0].record.max_duration_seconds, 60);
}

TEST(StreamConfig, ErrorsNameTheRuleAndTheField) {
  json config = kImagenetStream;
  config["action_rules"][1]["and"][1]["operator"] = "=>";
  EXPECT_EQ(error_of(config),
            "streams/s.json: action_rules[1] (\"Upload to AWS Kinesis Firehose\"): and[1].operator: "
            "unknown operator \"=>\" (use =, ==, !=, >, >=, < or <=)");
  config = kImagenetStream;
  config["action_rules"][0]["and"][0].erase("key");
  EXPECT_EQ(error_of(config), "streams/s.json: action_rules[0] (\"Recording\"): and[0]: missing \"key\"");
  config = kImagenetStream;
  config["action_rules"][0]["action"]["duration_in_seconds"] = "5";
  EXPECT_EQ(error_of(config), "streams/s.json: action_rules[0] (\"Recording\"): action.duration_in_seconds: "
                              "must be a positive number of seconds");
  config = kImagenetStream;
  config["action_rules"][0]["or"] = "probability";
  EXPECT_EQ(error_of(config), "streams/s.json: action_rules[0] (\"Recording\"): or: must be a list of "
                              "conditions, not a string");
  config = kImagenetStream;
  config["action_rules"][1]["action"].erase("deliveryStreamName");
  EXPECT_EQ(error_of(config), "streams/s.json: action_rules[1] (\"Upload to AWS Kinesis Firehose\"): "
                              "action.deliveryStreamName: missing");
  config = kImagenetStream;
  config["action_rules"][0]["action"]["action_name"] = "explode";
  EXPECT_EQ(error_of(config), "streams/s.json: action_rules[0] (\"Recording\"): action.action_name: "
                              "unknown action \"explode\" (record or upload)");
  config = kImagenetStream;
  config["action_rules"][0].erase("rule_name");
  EXPECT_EQ(error_of(config), "streams/s.json: action_rules[0]: rule_name: missing");
  config = kImagenetStream;
  config["action_rules"][0]["and"][0]["value"] = json::array({1});
  EXPECT_EQ(error_of(config), "streams/s.json: action_rules[0] (\"Recording\"): and[0].value: must be a "
                              "number, a string or a boolean, not an array");
  EXPECT_EQ(error_of(json::array()), "streams/s.json: a stream config is a JSON object");
}

TEST(StreamConfig, DelegatedActionsAreSkippedAndListed) {
  json config = kImagenetStream;
  config["action_rules"].push_back({{"rule_name", "Tell LINE"}, {"and", json::array()},
                                    {"action", {{"action_name", "line"}, {"token_id", ""}}}});
  const StreamConfig parsed = parse_stream_config(config, "s.json");
  EXPECT_EQ(parsed.rules.size(), 2u);
  ASSERT_EQ(parsed.skipped.size(), 1u);
  EXPECT_EQ(parsed.skipped[0], "Tell LINE (line)");
}

TEST(StreamConfig, LoadNamesTheFileAndTheParseError) {
  const std::string path = testing::TempDir() + "/broken_stream.json";
  std::ofstream(path) << "{\"action_rules\": [";
  try {
    load_stream_config(path);
    FAIL() << "no error";
  } catch (const ConfigError& error) {
    EXPECT_EQ(std::string(error.what()).rfind(path + ": not valid JSON: ", 0), 0u) << error.what();
  }
  EXPECT_THROW(load_stream_config(path + ".missing"), ConfigError);
  std::remove(path.c_str());
}

TEST(StreamConfig, RecordDurationsAreBoundedAndNoLongerThanTheirMaximum) {
  json config = kImagenetStream;
  config["action_rules"][0]["action"]["duration_in_seconds"] = 1e10;  // grew the ring until the process died
  EXPECT_EQ(error_of(config), "streams/s.json: action_rules[0] (\"Recording\"): action.duration_in_seconds: "
                              "10000000000.0 s is more than the 3600 s a clip may ask for");
  config = kImagenetStream;
  config["action_rules"][0]["action"]["max_duration_in_seconds"] = 3601;
  EXPECT_EQ(error_of(config), "streams/s.json: action_rules[0] (\"Recording\"): action.max_duration_in_seconds: "
                              "3601 s is more than the 3600 s a clip may ask for");
  config = kImagenetStream;
  config["action_rules"][0]["action"]["duration_in_seconds"] = 90;
  EXPECT_EQ(error_of(config), "streams/s.json: action_rules[0] (\"Recording\"): action.duration_in_seconds: "
                              "90.0 s is more than max_duration_in_seconds (60.0 s)");
  config["action_rules"][0]["action"]["max_duration_in_seconds"] = 3600;
  EXPECT_EQ(error_of(config), "");
}

TEST(StreamConfig, FiringsShowTheAccessKeyMaskedAndNoSecret) {
  json config = kImagenetStream;
  json& action = config["action_rules"][1]["action"];
  action["accessKey"] = "AKIAIOSFODNN7EXAMPLE";
  action["secretKey"] = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  action["sessionToken"] = "FwoGZXIvYXdzEXAMPLETOKEN";
  const Rule rule = parse_stream_config(config, "s.json").rules[1];
  EXPECT_EQ(rule.upload.secret_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");  // still used to sign
  EXPECT_EQ(rule.action_json["accessKey"], "****MPLE");
  EXPECT_EQ(rule.action_json["secretKey"], "(hidden)");
  EXPECT_EQ(rule.action_json["sessionToken"], "(hidden)");
  EXPECT_EQ(rule.action_json["deliveryStreamName"], "trafficStream");
  const std::string shown = rule.action_json.dump();
  for (const char* secret : {"wJalrXUtnFEMI", "FwoGZXIvYXdz", "AKIAIOSFODNN7"})
    EXPECT_EQ(shown.find(secret), std::string::npos) << shown;
}

TEST(StreamConfig, AJsonErrorInsideASecretIsNotQuoted) {
  const std::string path = testing::TempDir() + "/secret_stream.json";
  // A raw line break inside the secret: a JSON syntax error right there.
  std::ofstream(path) << "{\"action_rules\": [{\"rule_name\": \"u\", \"action\": {\"action_name\": \"upload\",\n"
                         "  \"secretKey\": \"wJalrXUtnFEMI/K7MDENG\nbPxRfiCYEXAMPLEKEY\"}}]}";
  try {
    load_stream_config(path);
    FAIL() << "no error";
  } catch (const ConfigError& error) {
    const std::string message = error.what();
    EXPECT_EQ(message.find("wJalr"), std::string::npos) << message;
    EXPECT_EQ(message.find("K7MDENG"), std::string::npos) << message;
    EXPECT_NE(message.find("line 3, column 0"), std::string::npos) << message;  // still says where
  }
  std::remove(path.c_str());
}

TEST(StreamConfig, ConfigTextGivenForItsPathIsNotQuoted) {
  // stream-config=<the JSON itself> instead of a file's path: the error says so, without the keys.
  const std::string text = R"({"action_rules": [{"action": {"secretKey": "wJalrXUtnFEMI/K7MDENG"}}]})";
  try {
    load_stream_config(text);
    FAIL() << "no error";
  } catch (const ConfigError& error) {
    const std::string message = error.what();
    EXPECT_EQ(message.find("K7MDENG"), std::string::npos) << message;
    EXPECT_NE(message.find("not a file path: " + std::to_string(text.size()) + " characters"), std::string::npos)
        << message;
  }
  EXPECT_EQ(quotable_config_path("streams/cam1.json"), "streams/cam1.json");  // a path is quoted as it is
}

TEST(Rules, TheSeedsRecordRule) {
  const Rule rule = parse_stream_config(kImagenetStream, "s.json").rules[0];
  EXPECT_TRUE(fires(rule, {{"predicted_class", "black swan"}, {"probability", 97.1}}));
  EXPECT_FALSE(fires(rule, {{"predicted_class", "goose"}, {"probability", 20}}));  // > is strict
  EXPECT_FALSE(fires(rule, {{"predicted_class", "goose"}}));                        // no probability
  EXPECT_FALSE(fires(rule, {{"probability", "97"}}));                               // a string is not a number
}

TEST(Rules, TheSeedsUploadRuleFiresOncePerEndedTrack) {
  const Rule rule = parse_stream_config(kImagenetStream, "s.json").rules[1];
  EXPECT_FALSE(fires(rule, {{"tracking_ended_time", "N/A"}, {"tracking_duration_in_seconds", 4.0}}));
  EXPECT_TRUE(fires(rule, {{"tracking_ended_time", "2026-11-23T08:24:36.748+0000"},
                           {"tracking_duration_in_seconds", 1.3}}));
  EXPECT_FALSE(fires(rule, {{"tracking_ended_time", "2026-11-23T08:24:36.748+0000"},
                            {"tracking_duration_in_seconds", 1.2}}));
}

TEST(Rules, OperatorsOnNumbersStringsAndBooleans) {
  const auto check = [](const char* op, json event_value, json rule_value) {
    Condition condition{"k", Operator::kEqual, std::move(rule_value)};
    for (const char* spelled : {"=", "==", "!=", ">", ">=", "<", "<="}) {
      if (std::string(spelled) == op) {
        json config = {{"action_rules", {{{"rule_name", "r"},
                                          {"and", {{{"key", "k"}, {"operator", op}, {"value", condition.value}}}},
                                          {"action", {{"action_name", "record"}, {"duration_in_seconds", 1}}}}}}};
        condition.op = parse_stream_config(config, "s").rules[0].all_of[0].op;
      }
    }
    return holds(condition, {{"k", std::move(event_value)}});
  };
  EXPECT_TRUE(check("=", 3, 3.0));
  EXPECT_TRUE(check("==", "car", "car"));
  EXPECT_FALSE(check("==", "car", "Car"));
  EXPECT_TRUE(check("!=", "car", "bus"));
  EXPECT_TRUE(check(">=", 1.3, 1.3));
  EXPECT_TRUE(check("<", 1, 2));
  EXPECT_FALSE(check("<", 2, 2));
  EXPECT_TRUE(check("<=", 2, 2));
  EXPECT_TRUE(check(">", "b", "a"));       // strings compare as strings
  EXPECT_TRUE(check("=", true, true));
  EXPECT_FALSE(check(">", "N/A", 1.3));    // different kinds: only != holds
  EXPECT_TRUE(check("!=", "N/A", 1.3));
  Condition missing{"absent", Operator::kNotEqual, "N/A"};
  EXPECT_FALSE(holds(missing, {{"k", 1}}));  // a missing key satisfies nothing
}

TEST(Rules, OrNeedsOneWhenNotEmpty) {
  json config = {{"action_rules", {{{"rule_name", "r"},
                                    {"and", {{{"key", "label"}, {"operator", "=="}, {"value", "car"}}}},
                                    {"or", {{{"key", "speed"}, {"operator", ">"}, {"value", 50}},
                                            {{"key", "lane"}, {"operator", "=="}, {"value", "bus"}}}},
                                    {"action", {{"action_name", "record"}, {"duration_in_seconds", 1}}}}}}};
  const Rule rule = parse_stream_config(config, "s").rules[0];
  EXPECT_TRUE(fires(rule, {{"label", "car"}, {"speed", 60}}));
  EXPECT_TRUE(fires(rule, {{"label", "car"}, {"speed", 10}, {"lane", "bus"}}));
  EXPECT_FALSE(fires(rule, {{"label", "car"}, {"speed", 10}}));
  EXPECT_FALSE(fires(rule, {{"label", "bus"}, {"speed", 60}}));
}

TEST(Rules, LookedUpValuesGiveTheSameVerdicts) {
  const StreamConfig config = parse_stream_config(kImagenetStream, "s.json");
  EXPECT_EQ(config.keys, (std::vector<std::string>{"probability", "tracking_ended_time", "tracking_duration_in_seconds"}));
  const json events[] = {{{"probability", 97.1}},
                         {{"probability", 20}},
                         {{"tracking_ended_time", "T"}, {"tracking_duration_in_seconds", 1.3}},
                         {{"tracking_ended_time", "N/A"}, {"tracking_duration_in_seconds", 9}},
                         json::object()};
  EventValues values;
  for (const json& event : events) {
    look_up(config, event, values);
    for (const Rule& rule : config.rules) EXPECT_EQ(fires(rule, values), fires(rule, event)) << event << rule.name;
  }
}

TEST(DefaultEvents, FrameResultsAndObjectsFlattened) {
  const json signal = json::parse(R"({"frame": [{"frame_num": 42, "timestamp": "T",
      "emcustom": [{"predicted_class": "marching", "probability": 63.0}],
      "object": [{"object_id": 7, "obj_label": "person", "confidence": 0.9,
                  "rect_params": {"left": 1, "top": 2, "width": 3, "height": 4},
                  "emcustom": {"predicted_class": "black swan", "probability": 97.1},
                  "classifier": [], "tracking_ended_time": "N/A"}]}]})");
  const json events = records_of(signal);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0], json({{"frame_num", 42}, {"timestamp", "T"}, {"predicted_class", "marching"},
                             {"probability", 63.0}}));
  EXPECT_EQ(events[1], json({{"frame_num", 42}, {"timestamp", "T"}, {"object_id", 7}, {"obj_label", "person"},
                             {"confidence", 0.9}, {"left", 1}, {"top", 2}, {"width", 3}, {"height", 4},
                             {"predicted_class", "black swan"}, {"probability", 97.1},
                             {"tracking_ended_time", "N/A"}}));
  EXPECT_TRUE(records_of(json::object()).empty());
}

}  // namespace
}  // namespace emi::rules
