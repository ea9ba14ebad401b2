// SPDX-License-Identifier: LGPL-2.1-or-later
#include "actions/upload/aws_credentials.h"

#include <cstdlib>
#include <fstream>
#include <map>
#include <stdexcept>

namespace emi::aws {
namespace {

// Credentials and config files are small; anything larger is not one.
constexpr std::streamsize kMaxSharedFileBytes = 1 << 20;

using Section = std::map<std::string, std::string>;

std::string environment(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

std::string home_file(const char* variable, const char* under_home) {
  if (std::string path = environment(variable); !path.empty()) return path;
  const std::string home = environment("HOME");
  return home.empty() ? std::string() : home + "/" + under_home;
}

std::string profile_name() {
  const std::string profile = environment("AWS_PROFILE");
  return profile.empty() ? "default" : profile;
}

std::string_view trimmed(std::string_view text) {
  const auto first = text.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t\r") - first + 1);
}

// The key = value lines of `section` in an INI file (as the AWS CLI writes them); empty when
// the file or section is missing.
Section read_section(const std::string& path, const std::string& section) {
  Section values;
  if (path.empty()) return values;
  std::ifstream file(path);
  if (!file) return values;
  std::string contents(static_cast<std::size_t>(kMaxSharedFileBytes), '\0');
  file.read(contents.data(), kMaxSharedFileBytes);
  contents.resize(static_cast<std::size_t>(file.gcount()));
  bool inside = false;
  std::string_view rest = contents;
  while (!rest.empty()) {
    const auto end = rest.find('\n');
    const std::string_view line = trimmed(rest.substr(0, end));
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end + 1);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    if (line.front() == '[' && line.back() == ']') {
      inside = trimmed(line.substr(1, line.size() - 2)) == section;
      continue;
    }
    const auto equals = line.find('=');
    if (inside && equals != std::string_view::npos)
      values[std::string(trimmed(line.substr(0, equals)))] = std::string(trimmed(line.substr(equals + 1)));
  }
  return values;
}

// The config file names profiles "[profile name]", except the default one.
std::string config_section(const std::string& profile) {
  return profile == "default" ? profile : "profile " + profile;
}

std::string value_of(const Section& section, const char* key) {
  const auto found = section.find(key);
  return found != section.end() ? found->second : std::string();
}

}  // namespace

CredentialChain::CredentialChain(Credentials explicit_keys) {
  const bool has_access = !explicit_keys.access_key_id.empty();
  const bool has_secret = !explicit_keys.secret_access_key.empty();
  if (has_access != has_secret)
    throw std::invalid_argument(has_access ? "access_key is set without secret_key"
                                           : "secret_key is set without access_key");
  if (has_access) explicit_ = std::move(explicit_keys);
}

ResolvedCredentials CredentialChain::resolve() const {
  if (explicit_) return {*explicit_, "the rule's keys"};
  if (auto found = credentials_from_environment()) return *found;
  if (auto found = credentials_from_shared_files()) return *found;
  throw std::invalid_argument(
      "no credentials: no access_key/secret_key, no AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and no profile '" +
      profile_name() + "' with aws_access_key_id and aws_secret_access_key in " +
      home_file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials") + " or " +
      home_file("AWS_CONFIG_FILE", ".aws/config"));
}

std::optional<ResolvedCredentials> credentials_from_environment() {
  Credentials credentials{environment("AWS_ACCESS_KEY_ID"), environment("AWS_SECRET_ACCESS_KEY"),
                          environment("AWS_SESSION_TOKEN")};
  if (credentials.access_key_id.empty() || credentials.secret_access_key.empty()) return std::nullopt;
  return ResolvedCredentials{std::move(credentials), "the environment"};
}

std::optional<ResolvedCredentials> credentials_from_shared_files() {
  const std::string profile = profile_name();
  // As the SDKs do: the credentials file wins over the config file for the same profile.
  for (const auto& [path, section] :
       {std::pair{home_file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"), profile},
        std::pair{home_file("AWS_CONFIG_FILE", ".aws/config"), config_section(profile)}}) {
    const Section values = read_section(path, section);
    Credentials credentials{value_of(values, "aws_access_key_id"), value_of(values, "aws_secret_access_key"),
                            value_of(values, "aws_session_token")};
    if (!credentials.access_key_id.empty() && !credentials.secret_access_key.empty())
      return ResolvedCredentials{std::move(credentials), "profile '" + profile + "' in " + path};
  }
  return std::nullopt;
}

std::string region_from_config_file() {
  return value_of(read_section(home_file("AWS_CONFIG_FILE", ".aws/config"), config_section(profile_name())),
                  "region");
}

std::string mask_access_key(std::string_view access_key_id) {
  return "****" + std::string(access_key_id.substr(access_key_id.size() > 4 ? access_key_id.size() - 4 : 0));
}

std::string redact(std::string text, const Credentials& credentials) {
  const auto replace_all = [&text](const std::string& secret, const std::string& shown) {
    if (secret.empty()) return;
    for (auto at = text.find(secret); at != std::string::npos; at = text.find(secret, at + shown.size()))
      text.replace(at, secret.size(), shown);
  };
  replace_all(credentials.secret_access_key, "[redacted]");
  replace_all(credentials.session_token, "[redacted]");
  replace_all(credentials.access_key_id, mask_access_key(credentials.access_key_id));
  return text;
}

}  // namespace emi::aws
