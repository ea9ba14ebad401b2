// SPDX-License-Identifier: LGPL-2.1-or-later
// FirehoseSettings checked and completed: credentials found, region, endpoint and spool filled in.
#pragma once

#include "actions/upload/aws_credentials.h"
#include "actions/upload/firehose_client.h"
#include "actions/upload/firehose_uploader.h"

namespace emi::aws {

struct ResolvedSettings {
  FirehoseSettings settings;  // keys as first found
  CredentialChain credentials_chain;
  ResolvedCredentials credentials;
  Endpoint endpoint;
};

// Throws std::invalid_argument ("Firehose uploader: ...") naming the setting that is missing or
// invalid, and never a secret.
ResolvedSettings resolve_settings(FirehoseSettings settings);

// Firehose's own rule for delivery stream names: 1 to 64 of A-Z a-z 0-9 _ . - (so a name is
// also a safe folder name; "." and ".." are refused too).
bool is_valid_stream_name(const std::string& name);

}  // namespace emi::aws
