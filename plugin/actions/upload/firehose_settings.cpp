// SPDX-License-Identifier: LGPL-2.1-or-later
#include "actions/upload/firehose_settings.h"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

#include "actions/upload/spool.h"

namespace emi::aws {
namespace {

bool is_valid_region(const std::string& region) {
  return std::all_of(region.begin(), region.end(), [](unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

std::string first_of_environment(std::initializer_list<const char*> variables) {
  for (const char* variable : variables) {
    const char* value = std::getenv(variable);
    if (value != nullptr && *value != '\0') return value;
  }
  return {};
}

void require(bool condition, const std::string& message) {
  if (!condition) throw std::invalid_argument("Firehose uploader: " + message);
}

// The chain, with the message of what it throws prefixed as the uploader's.
template <typename Function>
auto as_uploader_error(Function&& function) {
  try {
    return function();
  } catch (const std::invalid_argument& error) {
    throw std::invalid_argument(std::string("Firehose uploader: ") + error.what());
  }
}

}  // namespace

bool is_valid_stream_name(const std::string& name) {
  return !name.empty() && name.size() <= 64 && name != "." && name != ".." &&
         std::all_of(name.begin(), name.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '_' || c == '.' || c == '-'; });
}

ResolvedSettings resolve_settings(FirehoseSettings settings) {
  require(is_valid_stream_name(settings.delivery_stream_name),
          "delivery_stream_name '" + settings.delivery_stream_name +
              "' is not a stream name (1 to 64 of A-Z a-z 0-9 _ . -)");
  CredentialChain chain = as_uploader_error([&] {
    return CredentialChain({settings.access_key, settings.secret_key, settings.session_token});
  });
  ResolvedCredentials credentials = as_uploader_error([&] { return chain.resolve(); });
  settings.access_key = credentials.credentials.access_key_id;
  settings.secret_key = credentials.credentials.secret_access_key;
  settings.session_token = credentials.credentials.session_token;

  if (settings.region.empty()) settings.region = first_of_environment({"AWS_REGION", "AWS_DEFAULT_REGION"});
  if (settings.region.empty()) settings.region = region_from_config_file();
  require(!settings.region.empty(), "no region: set it, AWS_REGION, AWS_DEFAULT_REGION or the profile's region");
  require(is_valid_region(settings.region), "region '" + settings.region + "' is not a region name (like us-east-1)");
  require(settings.max_records_per_request >= 1 && settings.max_records_per_request <= kServiceMaxRecords,
          "max_records_per_request must be 1 to 500, is " + std::to_string(settings.max_records_per_request));
  require(settings.max_record_bytes >= 1 && settings.max_record_bytes <= kServiceMaxRecordBytes,
          "max_record_bytes must be 1 to 1024000, is " + std::to_string(settings.max_record_bytes));
  require(settings.max_request_bytes <= kServiceMaxRequestBytes,
          "max_request_bytes must be at most 4 MiB, is " + std::to_string(settings.max_request_bytes));
  require(RequestBody::single_record_body_bytes(settings.delivery_stream_name, settings.max_record_bytes) <=
              settings.max_request_bytes,
          "max_request_bytes (" + std::to_string(settings.max_request_bytes) +
              ") can't hold one record of max_record_bytes (" + std::to_string(settings.max_record_bytes) + ")");
  require(settings.max_spool_bytes >= settings.max_record_bytes, "max_spool_bytes is below max_record_bytes");
  require(settings.batch_delay.count() >= 0, "batch_delay is negative");
  require(settings.retry_delay.count() > 0, "retry_delay must be positive");
  require(settings.max_retry_delay >= settings.retry_delay, "max_retry_delay is below retry_delay");
  require(settings.rejected_retry_delay.count() > 0, "rejected_retry_delay must be positive");
  require(settings.connect_timeout.count() > 0 && settings.stall_timeout.count() > 0,
          "connect_timeout and stall_timeout must be positive");
  require(settings.max_answer_bytes >= 1024, "max_answer_bytes must be at least 1024");
  if (settings.endpoint.empty()) settings.endpoint = default_endpoint(settings.region);
  Endpoint endpoint = as_uploader_error([&] { return parse_endpoint(settings.endpoint); });
  if (settings.spool_dir.empty()) settings.spool_dir = spool::default_root(settings.delivery_stream_name).string();
  return {std::move(settings), std::move(chain), std::move(credentials), std::move(endpoint)};
}

}  // namespace emi::aws
