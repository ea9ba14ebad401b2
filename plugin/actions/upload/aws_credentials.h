// SPDX-License-Identifier: LGPL-2.1-or-later
// Where AWS credentials come from, in the AWS SDKs' order: keys given explicitly (the rule's),
// then the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), then the
// shared credentials and config files (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials,
// AWS_CONFIG_FILE or ~/.aws/config, profile AWS_PROFILE or "default"). And how to keep them out
// of messages: the access key masked, the secret key and session token never shown.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "actions/upload/aws_sigv4.h"

namespace emi::aws {

struct ResolvedCredentials {
  Credentials credentials;
  std::string origin;  // for messages: "the rule's keys", "the environment", "profile 'x' in /path"
};

class CredentialChain {
 public:
  // `explicit_keys`: both keys set (used as they are, with their session token), or both empty
  // (the chain is searched). Throws std::invalid_argument when only one is set.
  explicit CredentialChain(Credentials explicit_keys);

  // The first credentials found. Throws std::invalid_argument naming where it looked.
  ResolvedCredentials resolve() const;
  // Whether resolve() can find anything else later (the environment or files may change).
  bool can_change() const { return !explicit_.has_value(); }

 private:
  std::optional<Credentials> explicit_;
};

std::optional<ResolvedCredentials> credentials_from_environment();
std::optional<ResolvedCredentials> credentials_from_shared_files();
// The profile's `region` in the config file; empty when there is none.
std::string region_from_config_file();

// "****0001": the last 4 characters of an access key id, so that a user can tell keys apart.
std::string mask_access_key(std::string_view access_key_id);
// `text` with the secret key and session token replaced by "[redacted]" and the access key
// masked, for anything that may show text a server sent back.
std::string redact(std::string text, const Credentials& credentials);

}  // namespace emi::aws
