// The SSE4.2 build of llhttp's parser (llhttp_sse42.c), which the codec runs on CPUs that have
// SSE4.2, must report exactly what the portable build reports: the same spans, events and
// errors, for every byte value at every place of a name or value and however the bytes arrive.
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "support/llhttp_trace.h"

namespace confgate::testing {
namespace {

#if defined(CONFGATE_LLHTTP_SSE42)

class LlhttpSse42Test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!http::CpuHasSse42()) {
      GTEST_SKIP() << "this CPU has no SSE4.2";
    }
  }
};

std::vector<std::string> Differences(llhttp_type_t type, const std::string& input) {
  std::vector<std::string> differences;
  for (size_t step : {0, 1, 7, 16, 17}) {
    std::string portable = LlhttpTrace::Run(&PortableLlhttpExecute, type, input, step);
    std::string sse42 =
        LlhttpTrace::Run(&confgate_sse42_llhttp__internal_execute, type, input, step);
    if (portable != sse42) {
      differences.push_back("step " + std::to_string(step) + ":\n  portable " + portable +
                            "\n  sse4.2   " + sse42);
    }
  }
  return differences;
}

// Every byte value at every place of `input` from `first` to `last` (inclusive).
void ExpectSameForEveryByte(llhttp_type_t type, std::string input, size_t first, size_t last) {
  for (size_t place = first; place <= last; ++place) {
    for (int value = 0; value < 256; ++value) {
      std::string changed = input;
      changed[place] = static_cast<char>(value);
      std::vector<std::string> differences = Differences(type, changed);
      ASSERT_TRUE(differences.empty()) << "byte " << value << " at " << place << ":\n"
                                       << differences.front();
    }
  }
}

const std::string kLongName = "X-Config-Service-Replica-Name";
const std::string kLongValue = "apollo-config-service-replica-0.prod.example.internal:8080";

TEST_F(LlhttpSse42Test, TracesTheMessagesTheProxySees) {
  const std::string request =
      "GET /v1/kv/app/config?recurse=true HTTP/1.1\r\nHost: config.example.internal:8500\r\n"
      "User-Agent: config-client/2.4 (linux; amd64)\r\nAccept: application/json\r\n"
      "X-Request-Id: 2b0c6a53-7a1f-4d41-9a36-0d6f1c1a2b3c\r\n\r\n";
  const std::string post =
      "POST /v1/kv/app HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
      "\r\n5\r\nhello\r\n0\r\n\r\n";
  const std::string response =
      "HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Thu, 26 Nov 2026 01:20:53 GMT\r\n"
      "Content-Type: application/json\r\nContent-Length: 5\r\nConnection: keep-alive\r\n"
      "ETag: \"v42\"\r\nCache-Control: max-age=60\r\n\r\nhello";
  for (const std::string& input : {request, post, request + post}) {
    std::vector<std::string> differences = Differences(HTTP_REQUEST, input);
    EXPECT_TRUE(differences.empty()) << differences.front();
    // The trace sees the whole message (so the comparison means something).
    EXPECT_NE(LlhttpTrace::Run(&PortableLlhttpExecute, HTTP_REQUEST, input, 0).find("|complete"),
              std::string::npos);
  }
  std::vector<std::string> differences = Differences(HTTP_RESPONSE, response);
  EXPECT_TRUE(differences.empty()) << differences.front();
  // ... and its errors: a control byte in a value stops both builds at that byte.
  std::string bad = response;
  bad[bad.find("nginx") + 2] = '\x01';
  std::string portable = LlhttpTrace::Run(&PortableLlhttpExecute, HTTP_RESPONSE, bad, 0);
  EXPECT_NE(portable.find("|error"), std::string::npos) << portable;
  EXPECT_EQ(portable,
            LlhttpTrace::Run(&confgate_sse42_llhttp__internal_execute, HTTP_RESPONSE, bad, 0));
}

TEST_F(LlhttpSse42Test, EveryByteInARequestFieldValue) {
  std::string head = "GET / HTTP/1.1\r\nHost: a\r\nX-Replica: " + kLongValue + "\r\n\r\n";
  size_t value = head.find(kLongValue);
  ExpectSameForEveryByte(HTTP_REQUEST, head, value, value + kLongValue.size() - 1);
}

TEST_F(LlhttpSse42Test, EveryByteInAResponseFieldValue) {
  std::string head =
      "HTTP/1.1 200 OK\r\nX-Replica: " + kLongValue + "\r\nContent-Length: 0\r\n\r\n";
  size_t value = head.find(kLongValue);
  ExpectSameForEveryByte(HTTP_RESPONSE, head, value, value + kLongValue.size() - 1);
}

TEST_F(LlhttpSse42Test, EveryByteInAFieldName) {
  std::string request = "GET / HTTP/1.1\r\nHost: a\r\n" + kLongName + ": 1\r\n\r\n";
  size_t name = request.find(kLongName);
  ExpectSameForEveryByte(HTTP_REQUEST, request, name, name + kLongName.size() - 1);
  std::string response = "HTTP/1.1 204 No Content\r\n" + kLongName + ": 1\r\n\r\n";
  name = response.find(kLongName);
  ExpectSameForEveryByte(HTTP_RESPONSE, response, name, name + kLongName.size() - 1);
}

TEST_F(LlhttpSse42Test, EveryByteInATargetAndAReasonPhrase) {
  const std::string target = "/v1/kv/apollo/application/namespace/config?version=42";
  std::string request = "GET " + target + " HTTP/1.1\r\nHost: a\r\n\r\n";
  ExpectSameForEveryByte(HTTP_REQUEST, request, 4, 4 + target.size() - 1);
  const std::string reason = "Service Temporarily Unavailable";
  std::string response = "HTTP/1.1 503 " + reason + "\r\nContent-Length: 0\r\n\r\n";
  ExpectSameForEveryByte(HTTP_RESPONSE, response, 13, 13 + reason.size() - 1);
}

#else

TEST(LlhttpSse42Test, NotBuiltOnThisArchitecture) {
  GTEST_SKIP() << "the SSE4.2 build of llhttp is made on x86-64 only";
}

#endif

}  // namespace
}  // namespace confgate::testing
