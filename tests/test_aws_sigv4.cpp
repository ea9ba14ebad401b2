// SPDX-License-Identifier: LGPL-2.1-or-later
// SigV4 against AWS's published examples (the IAM ListUsers walk-through, the signing key
// derivation, cases of the aws-sig-v4-test-suite) and against botocore signing the same Firehose
// PutRecordBatch request.
#include <glib.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "actions/upload/aws_sigv4.h"
#include "common/gst_ptr.h"

namespace emi::aws {
namespace {

using nlohmann::json;
using testing::HasSubstr;

constexpr char kAccessKey[] = "AKIDEXAMPLE";
constexpr char kSecretKey[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr char kEmptyPayloadHash[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

std::chrono::system_clock::time_point utc(int year, int month, int day, int hour, int minute, int second) {
  std::tm fields{};
  fields.tm_year = year - 1900;
  fields.tm_mon = month - 1;
  fields.tm_mday = day;
  fields.tm_hour = hour;
  fields.tm_min = minute;
  fields.tm_sec = second;
  return std::chrono::system_clock::from_time_t(timegm(&fields));
}

// The time of AWS's examples: 20150830T123600Z.
const auto kExampleTime = utc(2015, 8, 30, 12, 36, 0);

TEST(AwsSigV4, IamListUsersDocumentationExample) {
  Request request;
  request.method = "GET";
  request.host = "iam.amazonaws.com";
  request.canonical_query = canonical_query({{"Version", "2010-05-08"}, {"Action", "ListUsers"}});
  request.headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};

  const Signature signature = sign(request, {kAccessKey, kSecretKey, ""}, {"us-east-1", "iam", false}, kExampleTime);

  EXPECT_EQ(signature.canonical_request,
            "GET\n/\nAction=ListUsers&Version=2010-05-08\n"
            "content-type:application/x-www-form-urlencoded; charset=utf-8\n"
            "host:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "content-type;host;x-amz-date\n" +
                std::string(kEmptyPayloadHash));
  EXPECT_EQ(signature.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n"
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59");
  EXPECT_EQ(signature.signature, "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
  EXPECT_EQ(signature.authorization,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-date, "
            "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
  ASSERT_EQ(signature.headers.size(), 2u);
  EXPECT_EQ(signature.headers[0], Header("X-Amz-Date", "20150830T123600Z"));
  EXPECT_EQ(signature.headers[1], Header("Authorization", signature.authorization));
}

TEST(AwsSigV4, DerivedSigningKeyExample) {
  EXPECT_EQ(to_hex(derive_signing_key(kSecretKey, "20120215", "us-east-1", "iam")),
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d");
}

// Cases of AWS's aws-sig-v4-test-suite: service "service", us-east-1, example.amazonaws.com.
struct SuiteCase {
  const char* name;
  const char* method;
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<Header> headers;
  const char* payload;
  const char* signed_headers;
  const char* signature;
};

class AwsSigV4TestSuite : public testing::TestWithParam<SuiteCase> {};

TEST_P(AwsSigV4TestSuite, MatchesTheSuitesSignature) {
  const SuiteCase& suite_case = GetParam();
  Request request;
  request.method = suite_case.method;
  request.host = "example.amazonaws.com";
  request.canonical_query = canonical_query(suite_case.query);
  request.headers = suite_case.headers;
  request.payload = suite_case.payload;

  const Signature signature = sign(request, {kAccessKey, kSecretKey, ""}, {"us-east-1", "service", false}, kExampleTime);

  EXPECT_EQ(signature.authorization,
            std::string("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=") +
                suite_case.signed_headers + ", Signature=" + suite_case.signature);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, AwsSigV4TestSuite,
    testing::Values(
        SuiteCase{"get_vanilla", "GET", {}, {}, "", "host;x-amz-date",
                  "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
        SuiteCase{"post_vanilla", "POST", {}, {}, "", "host;x-amz-date",
                  "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
        SuiteCase{"get_vanilla_query_order_key_case", "GET", {{"Param2", "value2"}, {"Param1", "value1"}}, {}, "",
                  "host;x-amz-date", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
        SuiteCase{"get_vanilla_utf8_query", "GET", {{"\xe1\x88\xb4", "bar"}}, {}, "", "host;x-amz-date",
                  "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
        SuiteCase{"get_header_value_trim", "GET", {}, {{"My-Header1", " value1"}, {"My-Header2", " \"a   b   c\""}},
                  "", "host;my-header1;my-header2;x-amz-date",
                  "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
        SuiteCase{"post_x_www_form_urlencoded", "POST", {}, {{"Content-Type", "application/x-www-form-urlencoded"}},
                  "Param1=value1", "content-type;host;x-amz-date",
                  "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"}),
    [](const testing::TestParamInfo<SuiteCase>& info) { return std::string(info.param.name); });

TEST(AwsSigV4, SessionTokenAndContentHashAreSignedAndReturned) {
  Request request;
  request.method = "POST";
  request.host = "example.amazonaws.com";

  const Signature signature =
      sign(request, {kAccessKey, kSecretKey, "session-token"}, {"us-east-1", "service", true}, kExampleTime);

  EXPECT_EQ(signature.signed_headers, "host;x-amz-content-sha256;x-amz-date;x-amz-security-token");
  EXPECT_THAT(signature.canonical_request, HasSubstr("\nx-amz-security-token:session-token\n"));
  EXPECT_EQ(signature.payload_hash, kEmptyPayloadHash);
  EXPECT_THAT(signature.headers, testing::ElementsAre(Header("X-Amz-Date", "20150830T123600Z"),
                                                       Header("X-Amz-Security-Token", "session-token"),
                                                       Header("X-Amz-Content-Sha256", kEmptyPayloadHash),
                                                       Header("Authorization", signature.authorization)));
}

TEST(AwsSigV4, EncodesAsSigV4Requires) {
  EXPECT_EQ(uri_encode("a b/c~d-e_f.g+h=", false), "a%20b%2Fc~d-e_f.g%2Bh%3D");
  EXPECT_EQ(uri_encode("/x y/z", true), "/x%20y/z");
  EXPECT_EQ(canonical_query({{"b", "2"}, {"a", "x y"}, {"a", "1"}}), "a=1&a=x%20y&b=2");
  EXPECT_EQ(format_amz_date(utc(2024, 2, 29, 23, 59, 58)), "20240229T235958Z");
}

TEST(AwsSigV4, RefusesWhatItCannotSign) {
  Request request;
  request.host = "example.amazonaws.com";
  const SigningOptions options{"us-east-1", "service", false};
  EXPECT_THROW(sign(request, {kAccessKey, "", ""}, options, kExampleTime), std::invalid_argument);
  EXPECT_THROW(sign(request, {kAccessKey, kSecretKey, ""}, {"", "service", false}, kExampleTime), std::invalid_argument);

  request.headers = {{"Host", "other.example.com"}};
  EXPECT_THROW(sign(request, {kAccessKey, kSecretKey, ""}, options, kExampleTime), std::invalid_argument);
  request.headers = {{"X-Injected", "a\r\nAuthorization: forged"}};
  EXPECT_THROW(sign(request, {kAccessKey, kSecretKey, ""}, options, kExampleTime), std::invalid_argument);
}

// botocore's SigV4Auth on AWSRequests, its clock fixed: prints each one's Authorization header.
constexpr char kBotocoreSigner[] = R"(
import datetime, json, sys
from unittest import mock
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

for spec in json.loads(sys.argv[1]):
    request = AWSRequest(method='POST', url=spec['url'], data=spec['body'].encode(), headers=spec['headers'])
    credentials = Credentials(spec['access_key'], spec['secret_key'], spec['session_token'] or None)
    with mock.patch('botocore.auth.datetime') as clock:
        clock.datetime.utcnow.return_value = datetime.datetime.strptime(spec['time'], '%Y%m%dT%H%M%SZ')
        SigV4Auth(credentials, 'firehose', spec['region']).add_auth(request)
    print(request.headers['Authorization'])
)";

// One Authorization header per spec; one Python run, as importing botocore takes a while.
std::vector<std::string> botocore_authorizations(const json& specs) {
  const std::string specs_text = specs.dump();
  const char* argv[] = {EMI_PYTHON_EXECUTABLE, "-c", kBotocoreSigner, specs_text.c_str(), nullptr};
  gchar* standard_output = nullptr;
  gchar* standard_error = nullptr;
  gint wait_status = 0;
  GError* raw_error = nullptr;
  const gboolean spawned = g_spawn_sync(nullptr, const_cast<gchar**>(argv), nullptr, G_SPAWN_DEFAULT, nullptr, nullptr,
                                        &standard_output, &standard_error, &wait_status, &raw_error);
  const UniqueChars output(standard_output);
  const UniqueChars errors(standard_error);
  g_autoptr(GError) error = raw_error;
  if (!spawned) {
    ADD_FAILURE() << "cannot run " << EMI_PYTHON_EXECUTABLE << ": " << error->message;
    return {};
  }
  if (!g_spawn_check_wait_status(wait_status, nullptr)) {
    ADD_FAILURE() << "botocore failed: " << errors.get();
    return {};
  }
  std::vector<std::string> authorizations;
  std::istringstream lines(output.get());
  for (std::string line; std::getline(lines, line);) authorizations.push_back(line);
  return authorizations;
}

struct PutRecordBatchCase {
  const char* url;
  const char* host;
  const char* session_token;
};

TEST(AwsSigV4, SignsPutRecordBatchAsBotocoreDoes) {
  const PutRecordBatchCase cases[] = {
      {"https://firehose.eu-west-1.amazonaws.com/", "firehose.eu-west-1.amazonaws.com", ""},
      {"https://firehose.eu-west-1.amazonaws.com/", "firehose.eu-west-1.amazonaws.com", "FwoGZXIvYXdzEBYaDH+example/token=="},
      {"http://127.0.0.1:4567/", "127.0.0.1:4567", ""},
  };
  const std::string body =
      R"({"DeliveryStreamName":"traffic-stream","Records":[{"Data":"eyJwcm9iYWJpbGl0eSI6IDk3LjF9Cg=="},)"
      R"({"Data":"eyJ0cmFja2luZ19lbmRlZF90aW1lIjogIk4vQSJ9Cg=="}]})";
  const auto time = utc(2024, 5, 17, 8, 30, 15);

  std::vector<std::string> ours;
  json specs = json::array();
  for (const PutRecordBatchCase& put : cases) {
    Request request;
    request.method = "POST";
    request.host = put.host;
    request.headers = {{"Content-Type", "application/x-amz-json-1.1"},
                       {"X-Amz-Target", "Firehose_20150804.PutRecordBatch"}};
    request.payload = body;
    const Credentials credentials{"AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                  put.session_token};
    ours.push_back(sign(request, credentials, {"eu-west-1", "firehose", false}, time).authorization);

    json headers = json::object();
    for (const auto& [name, value] : request.headers) headers[name] = value;
    specs.push_back({{"url", put.url},
                     {"body", body},
                     {"headers", headers},
                     {"access_key", credentials.access_key_id},
                     {"secret_key", credentials.secret_access_key},
                     {"session_token", credentials.session_token},
                     {"region", "eu-west-1"},
                     {"time", format_amz_date(time)}});
  }
  EXPECT_EQ(ours, botocore_authorizations(specs));
}

}  // namespace
}  // namespace emi::aws
